/**
 * A child process for settings.ts: reads a KafkaConfig (JSON) on stdin and
 * prints librdkafka's verdict on its settings as JSON (null or the problem).
 * A problem loading the client goes to stderr with status 1.
 */
import * as fs from 'node:fs';
import { librdkafkaProblem } from './settings';
import type { KafkaConfig } from './types';

try {
  const config = JSON.parse(fs.readFileSync(0, 'utf8')) as KafkaConfig;
  process.stdout.write(`${JSON.stringify(librdkafkaProblem(config))}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
}
