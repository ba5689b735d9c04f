# Oracle for test/query/query-to-json.rack.test.ts: what the legacy Rails stack made of a
# query string. One process answers many queries, one per line:
#
#   stdin:  the query string's raw bytes, hex-encoded ("613d31" for "a=1")
#   stdout: "OK " + hex of JSON.generate(Rack::Utils.parse_nested_query(qs)),
#           or "ERROR <exception class>" where Rack or JSON raised
#
# The query is built as a binary (ASCII-8BIT) string, as a Rack server hands
# QUERY_STRING over. The JSON is hex-encoded because it is not always one
# clean line: json 2.6.3 copies some invalid UTF-8 sequences through raw,
# with whatever ASCII byte sits inside them, a newline included.

# Rack reads these at load time; the reference is its default limits.
%w[RACK_QUERY_PARSER_BYTESIZE_LIMIT RACK_QUERY_PARSER_PARAMS_LIMIT].each { |name| ENV.delete(name) }

require 'rack'
require 'json'

$stdin.binmode
$stdout.binmode

$stdin.each_line do |line|
  qs = [line.chomp].pack('H*')
  raise 'query is not binary' unless qs.encoding == Encoding::ASCII_8BIT

  answer =
    begin
      "OK #{JSON.generate(Rack::Utils.parse_nested_query(qs)).unpack1('H*')}"
    rescue StandardError => e
      "ERROR #{e.class}"
    end
  $stdout.write(answer, "\n")
end
