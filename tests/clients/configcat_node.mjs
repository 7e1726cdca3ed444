// The real @configcat/sdk (Node) pointed at a Trackway server with its baseUrl option.
//
// Usage:
//   node configcat_node.mjs eval <baseUrl> <jobs.json>
//     jobs.json: [{"sdkKey", "cells": [{"key", "user": {identifier, email, country, custom} | null}]}]
//     Each job is downloaded once (manual polling), then every cell evaluated with a null
//     default. Prints one JSON list per job of {"value", "variationId", "error"}.
//   node configcat_node.mjs poll <baseUrl> <sdkKey> <flag> <wanted value>
//     Auto polling every second. Prints {"ready": statuses} once 3 downloads were made,
//     then waits (at most 30 s) until the flag's value is the wanted one and prints
//     {"statuses", "changed", "value"}: the HTTP status of every download (read from the
//     SDK's debug log) and how many times the SDK reported a changed config.
import * as configcat from '@configcat/sdk'

const [mode, baseUrl, ...rest] = process.argv.slice(2)

const statuses = []
const logger = {
  level: configcat.LogLevel.Debug,
  log(level, eventId, message) {
    const match = /Received headers\. \(StatusCode: (\d+)/.exec(String(message))
    if (match) statuses.push(Number(match[1]))
    if (level <= configcat.LogLevel.Error) console.error(String(message))
  },
}

async function evaluate(jobsPath) {
  const { readFile } = await import('node:fs/promises')
  const jobs = JSON.parse(await readFile(jobsPath, 'utf8'))
  const out = []
  for (const job of jobs) {
    const client = configcat.getClient(job.sdkKey, configcat.PollingMode.ManualPoll, {
      baseUrl,
      logger: { level: configcat.LogLevel.Error, log: logger.log },
    })
    const refreshed = await client.forceRefreshAsync()
    if (!refreshed.isSuccess) throw new Error(`download failed: ${refreshed.errorMessage}`)
    const results = []
    for (const cell of job.cells) {
      const user = cell.user && new configcat.User(
        cell.user.identifier, cell.user.email, cell.user.country, cell.user.custom ?? {},
      )
      const details = await client.getValueDetailsAsync(cell.key, null, user)
      results.push({
        value: details.value,
        variationId: details.variationId ?? null,
        error: details.errorMessage ?? null,
      })
    }
    client.dispose()
    out.push(results)
  }
  console.log(JSON.stringify(out))
}

async function poll(sdkKey, flag, wanted) {
  let changed = 0
  const client = configcat.getClient(sdkKey, configcat.PollingMode.AutoPoll, {
    baseUrl,
    pollIntervalSeconds: 1,
    maxInitWaitTimeSeconds: 10,
    logger,
    setupHooks: (hooks) => hooks.on('configChanged', () => { changed += 1 }),
  })
  const deadline = Date.now() + 30_000
  while (statuses.length < 3 && Date.now() < deadline) await sleep(100)
  console.log(JSON.stringify({ ready: [...statuses] }))
  let value = await client.getValueAsync(flag, null)
  while (value !== wanted && Date.now() < deadline) {
    await sleep(100)
    value = await client.getValueAsync(flag, null)
  }
  client.dispose()
  console.log(JSON.stringify({ statuses, changed, value }))
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

if (mode === 'eval' && rest.length === 1) {
  await evaluate(rest[0])
} else if (mode === 'poll' && rest.length === 3) {
  await poll(...rest)
} else {
  console.error('usage: node configcat_node.mjs eval <baseUrl> <jobs.json> | poll <baseUrl> <sdkKey> <flag> <value>')
  process.exit(2)
}
