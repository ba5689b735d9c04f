/**
 * Building blocks for schema keys (the core's in schema.ts, each backend's in
 * its options.ts): integers with their bounds, default and description.
 */

export const positiveInt = (max: number, fallback: number, description: string) =>
  ({ type: 'integer', minimum: 1, maximum: max, default: fallback, description }) as const;

export const nonNegativeInt = (max: number, fallback: number, description: string) =>
  ({ type: 'integer', minimum: 0, maximum: max, default: fallback, description }) as const;

export const DAY_MS = 86_400_000;
