/**
 * A TCP relay on loopback (port 0) between the connector and one of its dependencies (PostgreSQL,
 * Redis, the sandbox), to make that dependency fail the ways real ones do:
 *
 * - `pass`   — bytes flow both ways (optionally delayed, see {@link TcpRelay.delayMs}).
 * - `silent` — a hung peer: connections, old and new, are held open and every byte either way is
 *              dropped. Nothing is closed and nothing is refused, so only the client's own timeouts
 *              can tell (TCP keepalives are answered by the relay's kernel, as a half-open path or a
 *              stopped server's kernel answers them). A side that closes while silent is closed on the
 *              other side only when the relay passes again, as a FIN retransmitted after a partition
 *              heals reaches the server then — until then the server keeps the session (and its locks).
 * - `reset`  — a restart or a kill: every connection is reset at once, and new ones are reset as soon
 *              as they are accepted, until the mode changes.
 *
 * Bytes dropped while silent are gone: a connection that carried a request then waits for an answer
 * that never comes (or, once bytes flow again, reads a stream that no longer makes sense) — exactly
 * what a client must bound and then throw away.
 *
 * @example
 * const relay = await TcpRelay.start({ host: '127.0.0.1', port: 5432 })
 * const url = `postgres://postgres@127.0.0.1:${relay.port}/db`
 * relay.mode = 'silent'; … ; relay.mode = 'pass'
 * await relay.close()
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

export type RelayMode = 'pass' | 'silent' | 'reset'

interface Pair {
  client: Socket
  upstream: Socket
  /** A side ended while the relay was silent: end the other when it passes again. */
  pendingEnd: { client: boolean; upstream: boolean }
}

/** See the file comment. */
export class TcpRelay {
  readonly port: number
  /** Delay (ms) of every chunk sent from the upstream to the client while passing (0: none). */
  delayMs = 0
  /** Connections accepted in all, and bytes dropped while silent. */
  readonly stats = { accepted: 0, reset: 0, droppedBytes: 0 }
  readonly #server: Server
  readonly #upstream: { host: string; port: number }
  readonly #pairs = new Set<Pair>()
  #mode: RelayMode = 'pass'

  private constructor(server: Server, upstream: { host: string; port: number }) {
    this.#server = server
    this.#upstream = upstream
    this.port = (server.address() as { port: number }).port
    server.on('connection', (socket) => this.#accept(socket))
  }

  /** Starts a relay to `upstream` on a free loopback port. */
  static async start(upstream: { host: string; port: number }): Promise<TcpRelay> {
    const server = createServer({ noDelay: true })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return new TcpRelay(server, upstream)
  }

  get mode(): RelayMode {
    return this.#mode
  }

  set mode(mode: RelayMode) {
    this.#mode = mode
    if (mode === 'reset') {
      for (const pair of [...this.#pairs]) this.#reset(pair)
    } else if (mode === 'pass') {
      for (const pair of [...this.#pairs]) {
        if (pair.pendingEnd.client) pair.upstream.end()
        if (pair.pendingEnd.upstream) pair.client.end()
        pair.pendingEnd = { client: false, upstream: false }
      }
    }
  }

  /** Connections open through the relay. */
  get open(): number {
    return this.#pairs.size
  }

  /** Resets every connection and stops listening. */
  async close(): Promise<void> {
    for (const pair of [...this.#pairs]) this.#reset(pair)
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    this.stats.accepted++
    if (this.#mode === 'reset') {
      this.stats.reset++
      client.on('error', () => {})
      client.resetAndDestroy()
      return
    }
    const upstream = createConnection({ host: this.#upstream.host, port: this.#upstream.port, noDelay: true })
    const pair: Pair = { client, upstream, pendingEnd: { client: false, upstream: false } }
    this.#pairs.add(pair)
    // A connection reset by the relay or by a peer is the point of the exercise, never an error here.
    client.on('error', () => {})
    upstream.on('error', () => {})
    client.on('data', (chunk: Buffer) => {
      if (this.#mode !== 'pass') {
        this.stats.droppedBytes += chunk.length
        return
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (this.#mode !== 'pass') {
        this.stats.droppedBytes += chunk.length
        return
      }
      if (this.delayMs > 0) {
        setTimeout(() => {
          if (!client.destroyed) client.write(chunk)
        }, this.delayMs)
      } else client.write(chunk)
    })
    const ended = (side: 'client' | 'upstream'): void => {
      const other = side === 'client' ? upstream : client
      if (this.#mode === 'silent') pair.pendingEnd[side] = true
      else if (side === 'upstream' && this.delayMs > 0) setTimeout(() => other.end(), this.delayMs)
      else other.end()
    }
    client.on('end', () => ended('client'))
    upstream.on('end', () => ended('upstream'))
    const gone = (): void => {
      if (!this.#pairs.has(pair)) return
      if (this.#mode === 'silent' && !(client.destroyed && upstream.destroyed)) {
        // One side went away while silent: the other learns it when the relay passes again.
        if (client.destroyed) pair.pendingEnd.client = true
        if (upstream.destroyed) pair.pendingEnd.upstream = true
        return
      }
      this.#pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', gone)
    upstream.on('close', gone)
    upstream.setKeepAlive(true, 1000)
  }

  #reset(pair: Pair): void {
    this.#pairs.delete(pair)
    this.stats.reset++
    if (!pair.client.destroyed) pair.client.resetAndDestroy()
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy()
  }
}
