// Sends calls to a Segment-compatible server with the real @segment/analytics-node SDK.
//
// Usage: node send_node.mjs <host> <writeKey> [calls-json]
//   host        an origin without /v1, e.g. http://127.0.0.1:8088
//   calls-json  a JSON list of {"method": "track", "params": {...}}; when absent it is
//               read from the TRACKWAY_NODE_CALLS environment variable.
// Optional: TRACKWAY_NODE_FLUSH_AT (default: the number of calls).
//
// Prints one JSON object on stdout:
//   {"results": [{"method", "messageId", "error"}...], "errors": [<'error' events>]}
// and exits 0 once closeAndFlush() has returned (delivered or given up).
import { Analytics } from '@segment/analytics-node'

const [host, writeKey, callsArg] = process.argv.slice(2)
if (!host || !writeKey) {
  console.error('usage: node send_node.mjs <host> <writeKey> [calls-json]')
  process.exit(2)
}
const calls = JSON.parse(callsArg ?? process.env.TRACKWAY_NODE_CALLS ?? '[]')
const flushAt = Number(process.env.TRACKWAY_NODE_FLUSH_AT ?? Math.max(calls.length, 1))

const analytics = new Analytics({
  writeKey,
  host,
  flushAt,
  flushInterval: 60_000, // only flushAt and closeAndFlush() send
  maxRetries: 2,
  httpRequestTimeout: 10_000,
})

const errors = []
analytics.on('error', (err) => {
  errors.push({
    code: err?.code ?? null,
    reason: String(err?.reason ?? err),
  })
})

// The callbacks run when an event is delivered or given up on, before closeAndFlush()
// resolves; a call without a result here was still pending when the timeout hit.
const results = []
for (const { method, params } of calls) {
  analytics[method](params, (err, ctx) => {
    results.push({
      method,
      messageId: ctx?.event?.messageId ?? null,
      error: err ? String(err?.reason ?? err) : null,
    })
  })
}

await analytics.closeAndFlush({ timeout: 15_000 })
process.stdout.write(JSON.stringify({ results, errors }) + '\n')
