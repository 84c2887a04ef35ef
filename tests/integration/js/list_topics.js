#!/usr/bin/env node
// kafkajs's admin listTopics() (an all-topics Metadata request), driven by
// tests/integration/test_pool_first_read.py.
//
//   node list_topics.js <bootstrap>
//       prints {"topics": [names]} or {"error": "<kafkajs error name>", "message": "..."};
//       exit status 1 only for a broken invocation.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

async function main() {
  const [bootstrap] = process.argv.slice(2)
  if (!bootstrap) {
    console.error('usage: list_topics.js <bootstrap>')
    process.exit(1)
  }
  const kafka = new Kafka({
    clientId: 'kpool-it-list-topics',
    brokers: bootstrap.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
  })
  const admin = kafka.admin()
  try {
    await admin.connect()
    console.log(JSON.stringify({ topics: await admin.listTopics() }))
  } catch (e) {
    console.log(JSON.stringify({ error: e && e.name ? e.name : 'Error', message: String(e && e.message) }))
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

main()
