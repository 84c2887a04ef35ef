#!/usr/bin/env node
// kafkajs as a deployed application, driven by tests/integration/test_apps.py: it connects
// with nothing but the files written from the application's credentials Secret.
//
//   node apps_client.js produce <dir> <topic> <value>...
//   node apps_client.js consume <dir> <topic> <groupId> <expected> <timeoutMs>
//   node apps_client.js metadata <dir> <topic>
//
// <dir> holds kafka.crt, kafka.key and ca.crt (KAFKA_CERTIFICATE, KAFKA_PRIVATE_KEY,
// KAFKA_CA) and brokers (KAFKA_BROKERS). Every command prints one JSON object and exits 0:
// {"ok": true, ...} on success, {"error": "<Kafka error type>", "message": "..."} when the
// client reported an error (the first error carrying a Kafka type, looking through retries'
// wrappers). Exit status 1 only for a broken invocation.
'use strict'

const fs = require('fs')
const path = require('path')
const { Kafka, logLevel } = require('kafkajs')

function client(dir) {
  const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8')
  return new Kafka({
    clientId: 'kpool-it-apps',
    brokers: read('brokers').trim().split(','),
    ssl: { ca: [read('ca.crt')], cert: read('kafka.crt'), key: read('kafka.key') },
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    // few, quick retries: the tests want the error, not a long wait for it
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
  })
}

// The Kafka error type of e (KafkaJSProtocolError.type), through retry wrappers.
function errorOf(e) {
  for (let x = e, depth = 0; x && depth < 10; depth++) {
    if (x.type) return { error: x.type, message: String(x.message) }
    x = x.originalError || x.cause
  }
  return { error: e && e.name ? e.name : 'Error', message: String(e && e.message) }
}

async function produce(dir, topic, values) {
  const producer = client(dir).producer({ allowAutoTopicCreation: false })
  await producer.connect()
  try {
    const res = await producer.send({
      topic, acks: -1, messages: values.map((v) => ({ value: v })),
    })
    return { ok: true, offsets: res.map((r) => Number(r.baseOffset)) }
  } finally {
    await producer.disconnect()
  }
}

async function consume(dir, topic, groupId, expected, timeoutMs) {
  const consumer = client(dir).consumer({ groupId, retry: { retries: 2 } })
  const values = []
  let crash = null
  await consumer.connect()
  try {
    consumer.on(consumer.events.CRASH, (ev) => { crash = ev.payload.error })
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message }) => { values.push(message.value.toString()) },
    })
    const deadline = Date.now() + timeoutMs
    while (values.length < expected && !crash && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
    }
    if (crash) return errorOf(crash)
    return { ok: values.length >= expected, values }
  } finally {
    await consumer.disconnect()
  }
}

async function metadata(dir, topic) {
  const admin = client(dir).admin()
  await admin.connect()
  try {
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    return { ok: true, partitions: md.topics[0].partitions.length }
  } finally {
    await admin.disconnect()
  }
}

async function main() {
  const [cmd, dir, topic, ...rest] = process.argv.slice(2)
  if (!cmd || !dir || !topic) {
    console.error('usage: apps_client.js produce|consume|metadata <dir> <topic> ...')
    process.exit(1)
  }
  let out
  try {
    if (cmd === 'produce') out = await produce(dir, topic, rest)
    else if (cmd === 'consume') {
      out = await consume(dir, topic, rest[0], Number(rest[1]), Number(rest[2]))
    }
    else if (cmd === 'metadata') out = await metadata(dir, topic)
    else {
      console.error('unknown command ' + cmd)
      process.exit(1)
    }
  } catch (e) {
    out = errorOf(e)
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main()
