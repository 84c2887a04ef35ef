#!/usr/bin/env node
// kafkajs's admin client moving partitions (KIP-455), driven by tests/integration/test_reassign.py.
//
//   node reassign.js alter <bootstrap> <topics.json>
//       topics: [{topic, partitionAssignment: [{partition, replicas}]}] as kafkajs takes it;
//       prints {"ok": true} or {"error": "<Kafka error type>", "message": "..."}.
//   node reassign.js list <bootstrap>
//       prints kafkajs's listPartitionReassignments() answer ({topics: [...]}) as JSON.
//
// kafkajs sends both to the controller named by Metadata. Exit status 1 only for a broken
// invocation.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

function errorOf(e) {
  for (let x = e, depth = 0; x && depth < 10; depth++) {
    if (x.type) return { error: x.type, message: String(x.message) }
    if (x.errors && x.errors[0] && x.errors[0].type)
      return { error: x.errors[0].type, message: String(x.errors[0].message) }
    x = x.originalError || x.cause
  }
  return { error: e && e.name ? e.name : 'Error', message: String(e && e.message) }
}

async function main() {
  const [cmd, bootstrap, file] = process.argv.slice(2)
  if (!cmd || !bootstrap) {
    console.error('usage: reassign.js alter|list <bootstrap> [topics.json]')
    process.exit(1)
  }
  const kafka = new Kafka({
    clientId: 'kpool-it-reassign',
    brokers: bootstrap.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 1000 },
  })
  const admin = kafka.admin()
  await admin.connect()
  try {
    if (cmd === 'alter') {
      const topics = JSON.parse(fs.readFileSync(file, 'utf8'))
      await admin.alterPartitionReassignments({ topics, timeout: 10000 })
      console.log(JSON.stringify({ ok: true }))
    } else if (cmd === 'list') {
      console.log(JSON.stringify(await admin.listPartitionReassignments({ timeout: 10000 })))
    } else {
      console.error('unknown command ' + cmd)
      process.exit(1)
    }
  } catch (e) {
    console.log(JSON.stringify(errorOf(e)))
  } finally {
    await admin.disconnect()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
