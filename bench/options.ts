/**
 * What one `npm run bench` does, from environment variables, resolved once.
 *
 * Contract: `benchOptions(env)` never throws on a bad value; it says what it
 * did not understand in `problems` and the orchestrator stops with exit 64.
 * Every knob is an environment variable so that `npm run bench` stays one
 * command (npm passes no flags to a script without `--`).
 *
 *   BENCH_QUICK=1            smoke run: 2 s loads, 1 run, rates 1k and 5k, short micro
 *   BENCH_SECONDS=10         duration of each closed-loop and open-loop load
 *   BENCH_RUNS=3             closed-loop runs per server and connection count (median reported)
 *   BENCH_CONNECTIONS=50,200 closed-loop connection counts (wrk, one thread)
 *   BENCH_RATES=1000,5000,10000,20000   open-loop rates, requests/s (oha)
 *   BENCH_RETRIES=2          a run disturbed by other processes is run again (after waiting for quiet) up to this often
 *   BENCH_PROFILE=1          also run scratchd under --cpu-prof at the first connection count
 *   BENCH_SOAK_SECONDS=600   also run the memory soak (off: 0)
 *   BENCH_SOAK_RATE=5000     the soak's fixed rate
 *   BENCH_ONLY=all           all | load | micro | soak | burst | workers | hostile (load: skip micro;
 *                            the others: only that; soak without BENCH_SOAK_SECONDS soaks 600 s)
 *   BENCH_KAFKA=1            "with Kafka too": scratchd also writes to a real broker (servers.ts startKafka)
 *   BENCH_KAFKA_THREAD=0     with BENCH_KAFKA=1: kafka.thread off (Kafka on the HTTP thread), to compare
 *   BENCH_KAFKA_CORE=1       with BENCH_KAFKA=1: the Kafka thread and librdkafka's threads are pinned to the
 *                            load core, the HTTP thread alone on the server core (a machine with a core to
 *                            spare for them); default: the whole process on the server core
 *   BENCH_KAFKA_BROKER_CPU=1 with BENCH_KAFKA=1: the cores the broker's JVM is pinned to, a taskset list
 *                            (default: the load core; "0,1": left to the scheduler on both cores)
 *   BENCH_SERVER_CPU=0, BENCH_LOAD_CPU=1   the cores the servers and the load generators are pinned to
 *   BENCH_BEACONS=4096       distinct beacons generated (deterministic, seeded)
 */

export interface BenchOptions {
  readonly quick: boolean;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly runs: number;
  readonly retries: number;
  readonly connections: readonly number[];
  readonly rates: readonly number[];
  readonly profile: boolean;
  readonly soakSeconds: number;
  readonly soakRate: number;
  readonly only: 'all' | 'load' | 'micro' | 'soak' | 'burst' | 'workers' | 'hostile';
  readonly kafka: boolean;
  /** BENCH_KAFKA_CORE: the Kafka threads on the load core. */
  readonly kafkaOwnCore: boolean;
  /** BENCH_KAFKA_BROKER_CPU: the broker's cores (a taskset list). */
  readonly brokerCpus: string;
  readonly serverCpu: number;
  readonly loadCpu: number;
  readonly beacons: number;
  /** Milliseconds per micro-benchmark round, and rounds (median reported). */
  readonly microRoundMs: number;
  readonly microRounds: number;
}

export function benchOptions(env: NodeJS.ProcessEnv): { options: BenchOptions; problems: string[] } {
  const problems: string[] = [];
  const flag = (name: string): boolean => {
    const v = env[name];
    if (v === undefined || v === '' || v === '0' || v === 'false') return false;
    if (v === '1' || v === 'true') return true;
    problems.push(`${name}=${v}: expected 1 or 0`);
    return false;
  };
  const num = (name: string, fallback: number, min: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) {
      problems.push(`${name}=${v}: expected a number >= ${min}`);
      return fallback;
    }
    return n;
  };
  const list = (name: string, fallback: readonly number[]): readonly number[] => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    const values = v.split(',').map((s) => Number(s.trim()));
    if (values.some((n) => !Number.isInteger(n) || n <= 0)) {
      problems.push(`${name}=${v}: expected positive integers separated by commas`);
      return fallback;
    }
    return values;
  };
  const cpuList = (name: string, fallback: string): string => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    if (!/^\d+(,\d+)*$/.test(v)) {
      problems.push(`${name}=${v}: expected core numbers separated by commas`);
      return fallback;
    }
    return v;
  };

  const quick = flag('BENCH_QUICK');
  const loadCpu = num('BENCH_LOAD_CPU', 1, 0);
  const only = env.BENCH_ONLY ?? 'all';
  const onlies = ['all', 'load', 'micro', 'soak', 'burst', 'workers', 'hostile'] as const;
  const onlyValue = onlies.find((o) => o === only);
  if (onlyValue === undefined) problems.push(`BENCH_ONLY=${only}: expected ${onlies.join(', ')}`);
  const options: BenchOptions = {
    quick,
    seconds: num('BENCH_SECONDS', quick ? 2 : 10, 1),
    warmupSeconds: quick ? 1 : 3,
    runs: num('BENCH_RUNS', quick ? 1 : 3, 1),
    retries: num('BENCH_RETRIES', quick ? 0 : 2, 0),
    connections: list('BENCH_CONNECTIONS', [50, 200]),
    rates: list('BENCH_RATES', quick ? [1000, 5000] : [1000, 5000, 10_000, 20_000]),
    profile: flag('BENCH_PROFILE'),
    soakSeconds: num('BENCH_SOAK_SECONDS', onlyValue === 'soak' ? 600 : 0, 0),
    soakRate: num('BENCH_SOAK_RATE', 5000, 1),
    only: onlyValue ?? 'all',
    kafka: flag('BENCH_KAFKA'),
    kafkaOwnCore: flag('BENCH_KAFKA_CORE'),
    serverCpu: num('BENCH_SERVER_CPU', 0, 0),
    loadCpu,
    brokerCpus: cpuList('BENCH_KAFKA_BROKER_CPU', String(loadCpu)),
    beacons: num('BENCH_BEACONS', 4096, 1),
    microRoundMs: quick ? 50 : 200,
    microRounds: quick ? 3 : 7,
  };
  return { options, problems };
}
