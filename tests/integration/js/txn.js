#!/usr/bin/env node
// kafkajs transactions against kpool, driven by test_transactions.py.
//
//   node txn.js <bootstrap> <topic> <transactionalId> <group>
//       One transactional producer: commits 10 records, aborts 5, commits 10 more with the
//       group's offsets (sendOffsets: partition 0 at offset 7); then a read_committed group
//       consumer (kafkajs' default isolation) reads the topic from the beginning.
//       Prints {"read": [values in partition order], "offsets": {partition: offset}}.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, topic, txnId, group] = process.argv.slice(2)
  const kafka = new Kafka({ clientId: 'kpool-txn', brokers: [bootstrap], logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ transactionalId: txnId, maxInFlightRequests: 1, idempotent: true })
  await producer.connect()
  const send = async (prefix, n, commit, offsets) => {
    const txn = await producer.transaction()
    const messages = []
    for (let i = 0; i < n; i++) messages.push({ value: `${prefix}-${String(i).padStart(2, '0')}`, partition: 0 })
    await txn.send({ topic, messages })
    if (offsets) await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 0, offset: offsets }] }] })
    if (commit) await txn.commit()
    else await txn.abort()
  }
  await send('c1', 10, true)
  await send('ab', 5, false)
  await send('c2', 10, true, '7')
  await producer.disconnect()

  const admin = kafka.admin()
  await admin.connect()
  const fetched = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  const offsets = {}
  for (const t of fetched) for (const p of t.partitions) offsets[p.partition] = Number(p.offset)
  await admin.disconnect()

  const consumer = kafka.consumer({ groupId: `${group}-reader`, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const read = []
  await new Promise((resolve, reject) => {
    let grace = null
    const timer = setTimeout(() => reject(new Error(`timed out with ${read.length} records`)), 30000)
    consumer.run({
      eachMessage: async ({ message }) => {
        read.push(message.value.toString())
        if (read.length >= 20 && !grace) grace = setTimeout(() => { clearTimeout(timer); resolve() }, 1000)
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  process.stdout.write(JSON.stringify({ read, offsets }))
}

main().catch(e => { process.stderr.write(String(e && e.stack ? e.stack : e) + '\n'); process.exit(1) })
