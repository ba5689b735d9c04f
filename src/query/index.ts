/**
 * Query string → JSON, byte-identical to Rack 2.2 parse_nested_query +
 * json 2.6.3 JSON.generate (the contract is in query-to-json.ts, the rules
 * in docs/query.md).
 */
export { queryToJson } from './query-to-json';
