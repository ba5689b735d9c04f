/**
 * replay's report: what a run did, as JSON (--json) or as text.
 *
 * Contract: ReplayReport is the --json output, one object; its field names
 * and meanings are part of the command's interface (scripts read them), so
 * they only grow. `formatReport` is the human form of the same numbers.
 */

export interface ReplayReport {
  target: string;
  mode: 'rate' | 'closed';
  target_rate: number | null;
  connections: number;
  /** Input lines read (including blank, comments, skipped). */
  lines: number;
  /** Requests sent (each counted once, retries apart). */
  sent: number;
  answered: number;
  /** Answers by status code. */
  status: Record<string, number>;
  /** Sent requests without an answer. */
  failed: number;
  /** Failed requests by reason: refused, reset, closed, timeout, protocol, aborted, or an errno code. */
  errors: Record<string, number>;
  retries: number;
  skipped: { malformed: number; method: number };
  duration_s: number;
  /** Requests sent per second over duration_s. */
  rate: number;
  latency_ms: { p50: number; p90: number; p99: number; p99_9: number; max: number; mean: number };
  interrupted: boolean;
  stopped_by_errors: boolean;
  input_error: string | null;
}

export function formatReport(r: ReplayReport): string {
  const count = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${k}: ${v}`)
      .join('  ');
  const ms = (v: number) => `${v.toFixed(v < 10 ? 3 : 1)} ms`;
  const l = r.latency_ms;
  const lines = [
    `replay: ${r.sent} requests to ${r.target} in ${r.duration_s.toFixed(3)} s, ${Math.round(r.rate)} req/s ` +
      `(${r.mode === 'rate' ? `target ${r.target_rate} req/s, open loop` : 'closed loop'}, ${r.connections} connections)`,
    `  answered  ${r.answered}${r.answered > 0 ? `   ${count(r.status)}` : ''}`,
    `  failed    ${r.failed}${r.failed > 0 ? `   ${count(r.errors)}` : ''}${r.retries > 0 ? `   (retried on a fresh connection: ${r.retries})` : ''}`,
    `  skipped   ${r.skipped.malformed + r.skipped.method}   malformed: ${r.skipped.malformed}  method: ${r.skipped.method}   (of ${r.lines} lines)`,
    `  latency   p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p99_9)}  max ${ms(l.max)}`,
  ];
  if (r.interrupted) lines.push('  interrupted (SIGINT)');
  if (r.stopped_by_errors) lines.push('  stopped: --max-errors reached');
  if (r.input_error !== null) lines.push(`  input error: ${r.input_error}`);
  return `${lines.join('\n')}\n`;
}
