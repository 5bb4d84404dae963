/**
 * The connector needs Redis 5 or newer (its rate-limit script relies on effects replication, the
 * default since 5): `createRedisClient` asks the server its version once connected and logs an error
 * naming it when it is older.
 *
 * No Redis 4 exists on this machine (nor should one), so the server here is a fake: a TCP server on
 * port 0 speaking just enough RESP — INFO answered with the `redis_version` under test, PING, QUIT. It
 * is the one place where a real part cannot show the case.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter, once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { createLogger } from '../../src/logger.js'
import { createRedisClient, MIN_REDIS_MAJOR } from '../../src/redis.js'

/** A RESP server that reports `version`; emits 'command' with each command's arguments. */
async function fakeRedis(version: string) {
  const events = new EventEmitter()
  const sockets = new Set<Socket>()
  const info = `# Server\r\nredis_version:${version}\r\nredis_mode:standalone\r\n\r\n# Persistence\r\nloading:0\r\n`
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      for (;;) {
        const parsed = parseCommand(buffer)
        if (!parsed) break
        buffer = buffer.subarray(parsed.used)
        const [name = '', ...args] = parsed.args
        events.emit('command', [name.toLowerCase(), ...args.map((a) => a.toLowerCase())])
        switch (name.toLowerCase()) {
          case 'info':
            socket.write(`$${Buffer.byteLength(info)}\r\n${info}\r\n`)
            break
          case 'ping':
            socket.write('+PONG\r\n')
            break
          case 'quit':
            socket.end('+OK\r\n')
            break
          default:
            socket.write('+OK\r\n')
        }
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`,
    events,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** One RESP array of bulk strings from the front of `buf`, or undefined when incomplete. */
function parseCommand(buf: Buffer): { args: string[]; used: number } | undefined {
  if (buf.length === 0 || buf[0] !== 0x2a) return undefined // '*'
  let at = buf.indexOf('\r\n')
  if (at < 0) return undefined
  const count = Number(buf.subarray(1, at).toString())
  let pos = at + 2
  const args: string[] = []
  for (let i = 0; i < count; i++) {
    at = buf.indexOf('\r\n', pos)
    if (at < 0) return undefined
    const len = Number(buf.subarray(pos + 1, at).toString())
    if (buf.length < at + 2 + len + 2) return undefined
    args.push(buf.subarray(at + 2, at + 2 + len).toString())
    pos = at + 2 + len + 2
  }
  return { args, used: pos }
}

for (const [version, tooOld] of [['4.0.0', true], ['4.0.14', true], ['5.0.0', false], ['7.2.4', false]] as const) {
  test(`a Redis ${version} server ${tooOld ? 'is reported as too old' : 'is accepted without a word'}`, async () => {
    const fake = await fakeRedis(version)
    const lines: Array<{ level: number; msg: string; version?: string }> = []
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l))
        cb()
      },
    })
    const commands: string[] = []
    fake.events.on('command', (args: string[]) => commands.push(args.join(' ')))
    const redis = createRedisClient(fake.url, { logger: createLogger({ level: 'info', destination }), timeoutMs: 2000 })
    try {
      await once(redis, 'ready')
      // The client's own 'ready' listener (registered first) sends the version check, `INFO server`; this
      // PING goes after it on the same connection, so once it is answered the check has read the version.
      assert.equal(await redis.ping(), 'PONG')
      assert.deepEqual(
        commands.filter((c) => !c.startsWith('client ')),
        ['info', 'info server', 'ping'],
        'the ready check, the version check, our PING',
      )
      const complaints = lines.filter((l) => /too old/.test(l.msg))
      if (tooOld) {
        assert.equal(complaints.length, 1, JSON.stringify(lines))
        assert.equal(complaints[0]!.level, 50, 'logged as an error')
        assert.equal(complaints[0]!.version, version)
        assert.equal(complaints[0]!.msg, `Redis ${version} is too old: ghl-connect needs Redis ${MIN_REDIS_MAJOR} or newer`)
      } else {
        assert.deepEqual(complaints, [])
      }
    } finally {
      await redis.quit().catch(() => redis.disconnect())
      await fake.close()
    }
  })
}
