// Checks OTLP/HTTP JSON trace and metric exports against the official OpenTelemetry protobuf
// definitions (npm @opentelemetry/otlp-transformer's generated root). Reads a JSON array of
// request bodies (the file named by the first argument, else stdin); each is read into
// ExportTraceServiceRequest (or ExportMetricsServiceRequest) (ids from OTLP's hex
// into bytes), verified, encoded to protobuf and decoded back, and must come back the same:
// a field the definitions do not know would be lost on the way and fail the check. Prints
// {spans: [{name, kind, parent, attributes: [keys]}...], metrics: [{name, unit, count,
// attributes}...] (a histogram's data points; a sum's with its value as count, and
// monotonic)} or exits 1 with why.
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');
const TRACES = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const METRICS = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;
const ID = new Set(['traceId', 'spanId', 'parentSpanId']);

// ids: hex (OTLP's JSON) <-> base64 (protobufjs's objects)
function ids(v, to) {
  if (Array.isArray(v)) return v.map((x) => ids(x, to));
  if (v === null || typeof v !== 'object') return v;
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    if (ID.has(k) && typeof x === 'string') {
      out[k] = to === 'b64' ? Buffer.from(x, 'hex').toString('base64') : Buffer.from(x, 'base64').toString('hex');
    } else out[k] = ids(x, to);
  }
  return out;
}

function sorted(v) {
  if (Array.isArray(v)) return v.map(sorted);
  if (v === null || typeof v !== 'object') return v;
  const out = {};
  for (const k of Object.keys(v).sort()) out[k] = sorted(v[k]);
  return out;
}

const bodies = JSON.parse(require('fs').readFileSync(process.argv[2] || 0, 'utf8'));
const spans = [], metrics = [];
for (const body of bodies) {
  const T = body.resourceMetrics ? METRICS : TRACES;
  const obj = T.fromObject(ids(body, 'b64'));
  const err = T.verify(obj);
  if (err) { console.error('not valid: ' + err); process.exit(1); }
  const back = T.toObject(T.decode(T.encode(obj).finish()), { longs: String, bytes: String, enums: Number });
  const a = JSON.stringify(sorted(body)), b = JSON.stringify(sorted(ids(back, 'hex')));
  if (a !== b) { console.error('changed on the way through the definitions:\n' + a + '\n' + b); process.exit(1); }
  for (const rs of back.resourceSpans || []) for (const ss of rs.scopeSpans) for (const s of ss.spans) {
    spans.push({ name: s.name, kind: s.kind, parent: !!s.parentSpanId, attributes: (s.attributes || []).map((x) => x.key) });
  }
  for (const rm of back.resourceMetrics || []) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) {
    if (m.sum) {
      for (const dp of m.sum.dataPoints) {
        metrics.push({ name: m.name, unit: m.unit, count: dp.asInt, monotonic: !!m.sum.isMonotonic,
          temporality: m.sum.aggregationTemporality, attributes: (dp.attributes || []).map((x) => x.key) });
      }
      continue;
    }
    for (const dp of m.histogram.dataPoints) {
      metrics.push({ name: m.name, unit: m.unit, count: dp.count, attributes: (dp.attributes || []).map((x) => x.key) });
    }
  }
}
console.log(JSON.stringify({ spans, metrics }));
