# Oracle for test/query/query-to-json.rack.test.ts: what the legacy Rails stack made of a
# query string. One process answers many queries, one per line:
#
#   stdin:  the query string's raw bytes, hex-encoded ("613d31" for "a=1")
#   stdout: "OK " + hex of JSON.generate(Rack::Utils.parse_nested_query(qs)),
#           or "ERROR <exception class>" where Rack or JSON raised
#
# POST bodies (test/query/body-to-json.rack.test.ts), one per line too:
#
#   "F <query hex> <body hex>": a form body, JSON.generate(Rack::Request#params)
#       of a POST with that query and the body as rack.input
#       (Content-Type: application/x-www-form-urlencoded);
#   "J <query hex> <body hex>": a JSON body, JSON.generate(GET.merge(object))
#       for the object JSON.parse(body) gives, or for each object of the
#       array it gives (anything else raises);
#   stdout: "OK " + the hex of each answer, joined by ",", or "ERROR <class>".
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

def post_answer(mode, query, body)
  if mode == 'F'
    env = Rack::MockRequest.env_for("/track", method: 'POST', input: body,
                                    'CONTENT_TYPE' => 'application/x-www-form-urlencoded')
    env['QUERY_STRING'] = query
    [JSON.generate(Rack::Request.new(env).params)]
  else
    get = Rack::Utils.parse_nested_query(query)
    parsed = JSON.parse(body)
    objects = parsed.is_a?(Array) ? parsed : [parsed]
    objects.map do |object|
      raise TypeError, 'not an object' unless object.is_a?(Hash)
      JSON.generate(get.merge(object))
    end
  end
end

$stdin.each_line do |line|
  line = line.chomp
  if line.start_with?('F ', 'J ')
    mode, query, body = line.split(/ /, -1)
    answer =
      begin
        "OK #{post_answer(mode, [query].pack('H*'), [body].pack('H*')).map { |json| json.unpack1('H*') }.join(',')}"
      rescue StandardError => e
        "ERROR #{e.class}"
      end
    $stdout.write(answer, "\n")
    next
  end
  qs = [line].pack('H*')
  raise 'query is not binary' unless qs.encoding == Encoding::ASCII_8BIT

  answer =
    begin
      "OK #{JSON.generate(Rack::Utils.parse_nested_query(qs)).unpack1('H*')}"
    rescue StandardError => e
      "ERROR #{e.class}"
    end
  $stdout.write(answer, "\n")
end
