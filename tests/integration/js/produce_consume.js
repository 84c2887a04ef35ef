#!/usr/bin/env node
// kafkajs side of kpool's client round-trip tests, driven by pytest (tests/integration/
// clients.py writes and reads the record files).
//
//   node produce_consume.js produce <bootstrap> <jobs.json>
//       jobs: [{topic, codec, file}]; produces every job's records concurrently (one
//       producer, acks=all, the default murmur2 partitioner), each topic in order.
//       Prints {"<topic>": <records acknowledged>} as JSON.
//   node produce_consume.js consume <bootstrap> <jobs.json> <groupId> <timeoutMs>
//       jobs: [{topic, expected, file}]; one consumer in group <groupId> subscribes to every
//       topic from the beginning (eachBatch) until each has `expected` records (plus a short
//       grace period, so duplicates show), then writes what it read to `file`.
//   node produce_consume.js offsets <bootstrap> <groupId> <topic>...
//       Prints the group's committed offsets {"<topic>": {"<partition>": offset}}.
//
// Record file: per record i32 partition, i64 offset, i32 key length (-1 null), key,
// i32 value length (-1 null), value, u16 header count, per header u16 name length, name
// (UTF-8), i32 value length, value. All big-endian.
//
// Compression: kafkajs has gzip built in; snappy is kafkajs-snappy (pure JS, snappyjs);
// lz4 (Kafka uses the LZ4 frame format) is lz4-napi's frame API (napi-rs, prebuilt binary
// shipped as an npm optional dependency); zstd compresses with @bokuweb/zstd-wasm (WASM in
// the package) and decompresses with fzstd (pure JS, handles frames without a content size,
// as Java's and librdkafka's streaming compressors write them).
'use strict'

const fs = require('fs')
const {
  Kafka, CompressionTypes, CompressionCodecs, Partitioners, logLevel,
} = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4-napi')
const zstd = require('@bokuweb/zstd-wasm')
const fzstd = require('fzstd')

const LZ4Codec = {
  async compress(encoder) {
    return lz4.compressFrame(encoder.buffer)
  },
  async decompress(buffer) {
    return lz4.decompressFrame(buffer)
  },
}
const ZstdCodec = {
  async compress(encoder) {
    return Buffer.from(zstd.compress(encoder.buffer, 3))
  },
  async decompress(buffer) {
    return Buffer.from(fzstd.decompress(buffer))
  },
}
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = () => LZ4Codec
CompressionCodecs[CompressionTypes.ZSTD] = () => ZstdCodec

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

function readRecords(file) {
  const buf = fs.readFileSync(file)
  const out = []
  let pos = 0
  while (pos < buf.length) {
    pos += 12 // partition, offset: not used for producing
    const klen = buf.readInt32BE(pos)
    pos += 4
    const key = klen >= 0 ? buf.subarray(pos, pos + klen) : null
    pos += Math.max(klen, 0)
    const vlen = buf.readInt32BE(pos)
    pos += 4
    const value = vlen >= 0 ? buf.subarray(pos, pos + vlen) : null
    pos += Math.max(vlen, 0)
    const nh = buf.readUInt16BE(pos)
    pos += 2
    const headers = {}
    for (let i = 0; i < nh; i++) {
      const nlen = buf.readUInt16BE(pos)
      const name = buf.toString('utf8', pos + 2, pos + 2 + nlen)
      pos += 2 + nlen
      const hlen = buf.readInt32BE(pos)
      pos += 4
      if (name in headers) throw new Error(`duplicate header name ${name}`)
      headers[name] = hlen >= 0 ? buf.subarray(pos, pos + hlen) : null
      pos += Math.max(hlen, 0)
    }
    const msg = { key, value }
    if (nh > 0) msg.headers = headers
    out.push(msg)
  }
  return out
}

function encodeRecords(records) {
  const parts = []
  const i32 = v => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b }
  for (const r of records) {
    const head = Buffer.alloc(12)
    head.writeInt32BE(r.partition, 0)
    head.writeBigInt64BE(BigInt(r.offset), 4)
    parts.push(head)
    for (const b of [r.key, r.value]) {
      if (b === null || b === undefined) parts.push(i32(-1))
      else parts.push(i32(b.length), b)
    }
    const names = Object.keys(r.headers || {})
    const hs = []
    for (const name of names) {
      const v = r.headers[name]
      // kafkajs turns repeated header names into arrays
      for (const one of Array.isArray(v) ? v : [v]) hs.push([name, one])
    }
    const nh = Buffer.alloc(2)
    nh.writeUInt16BE(hs.length)
    parts.push(nh)
    for (const [name, v] of hs) {
      const nb = Buffer.from(name, 'utf8')
      const nl = Buffer.alloc(2)
      nl.writeUInt16BE(nb.length)
      parts.push(nl, nb)
      if (v === null || v === undefined) parts.push(i32(-1))
      else parts.push(i32(v.length), v)
    }
  }
  return Buffer.concat(parts)
}

function client(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    connectionTimeout: 10000,
    requestTimeout: 60000,
    retry: { retries: 3, initialRetryTime: 200 },
  })
}

const CHUNK = 2000

async function produce(bootstrap, jobsFile) {
  const jobs = JSON.parse(fs.readFileSync(jobsFile, 'utf8'))
  const kafka = client(bootstrap, 'kpool-it-kafkajs-producer')
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const result = {}
  try {
    await Promise.all(jobs.map(async job => {
      const compression = CODECS[job.codec]
      if (compression === undefined) throw new Error(`unknown codec ${job.codec}`)
      const messages = readRecords(job.file)
      let acked = 0
      for (let i = 0; i < messages.length; i += CHUNK) {
        const chunk = messages.slice(i, i + CHUNK)
        const res = await producer.send({ topic: job.topic, acks: -1, compression, messages: chunk })
        for (const r of res) {
          if (r.errorCode !== 0) throw new Error(`${job.topic}[${r.partition}]: error ${r.errorCode}`)
        }
        acked += chunk.length
      }
      result[job.topic] = acked
    }))
  } finally {
    await producer.disconnect()
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

async function consume(bootstrap, jobsFile, groupId, timeoutMs) {
  const jobs = JSON.parse(fs.readFileSync(jobsFile, 'utf8'))
  const kafka = client(bootstrap, 'kpool-it-kafkajs-consumer')
  const consumer = kafka.consumer({
    groupId,
    maxBytes: 16 << 20,
    maxBytesPerPartition: 4 << 20,
    maxWaitTimeInMs: 200,
    retry: { retries: 2, initialRetryTime: 200 },
  })
  const got = {}
  const counts = {}
  for (const j of jobs) { got[j.topic] = []; counts[j.topic] = 0 }
  let fail = null
  let doneResolve
  const done = new Promise(resolve => { doneResolve = resolve })
  const complete = () => jobs.every(j => counts[j.topic] >= j.expected)
  consumer.on(consumer.events.CRASH, e => {
    fail = new Error(`consumer crashed: ${e.payload.error && e.payload.error.stack}`)
    doneResolve()
  })
  const timer = setTimeout(() => {
    fail = new Error(`timeout after ${timeoutMs} ms; read ${JSON.stringify(counts)} of ` +
      JSON.stringify(Object.fromEntries(jobs.map(j => [j.topic, j.expected]))))
    doneResolve()
  }, timeoutMs)

  await consumer.connect()
  await consumer.subscribe({ topics: jobs.map(j => j.topic), fromBeginning: true })
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const list = got[batch.topic]
      for (const m of batch.messages) {
        list.push({ partition: batch.partition, offset: m.offset, key: m.key, value: m.value, headers: m.headers })
      }
      counts[batch.topic] += batch.messages.length
      if (complete()) setTimeout(doneResolve, 1000) // grace period: duplicates would show
    },
  })
  await done
  clearTimeout(timer)
  await consumer.disconnect()
  for (const j of jobs) fs.writeFileSync(j.file, encodeRecords(got[j.topic]))
  process.stdout.write(JSON.stringify(counts) + '\n')
  if (fail) throw fail
}

async function offsets(bootstrap, groupId, topics) {
  const admin = client(bootstrap, 'kpool-it-kafkajs-admin').admin()
  await admin.connect()
  try {
    const res = await admin.fetchOffsets({ groupId, topics })
    const out = {}
    for (const t of res) {
      out[t.topic] = Object.fromEntries(t.partitions.map(p => [p.partition, Number(p.offset)]))
    }
    process.stdout.write(JSON.stringify(out) + '\n')
  } finally {
    await admin.disconnect()
  }
}

async function main() {
  await zstd.init()
  const [mode, ...args] = process.argv.slice(2)
  if (mode === 'produce') await produce(args[0], args[1])
  else if (mode === 'consume') await consume(args[0], args[1], args[2], Number(args[3] || 120000))
  else if (mode === 'offsets') await offsets(args[0], args[1], args.slice(2))
  else throw new Error(`usage: produce|consume|offsets ...`)
}

main().then(() => process.exit(0), e => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`)
  process.exit(1)
})
