/**
 * The scale token endpoint (`token-endpoint.ts`) in a process of its own, as HighLevel's is: the
 * benchmark then measures the connector's event loop without the endpoint's work on it. Its counters
 * are read over IPC (`stats()`); `close()` ends the process.
 *
 * Run directly (`node --import tsx test/scale/token-endpoint-process.ts <latencyMs>`) it is the child.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { startTokenEndpoint } from './token-endpoint.js'

/** What the endpoint counted (see {@link ScaleTokenEndpoint}). */
export interface EndpointStats {
  refreshed: number
  reused: number
  peakInFlight: number
}

export interface TokenEndpointProcess {
  url: string
  stats(): Promise<EndpointStats>
  close(): Promise<void>
}

type Message = { url: string } | ({ type: 'stats' } & EndpointStats)

export async function startTokenEndpointProcess(options: { latencyMs: number }): Promise<TokenEndpointProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [String(options.latencyMs)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const [first] = (await Promise.race([once(child, 'message'), once(child, 'exit').then(() => { throw new Error('the token endpoint process exited before listening') })])) as [Message]
  if (!('url' in first)) throw new Error('the token endpoint process sent no url')
  return {
    url: first.url,
    async stats() {
      const answer = once(child, 'message') as Promise<[Message]>
      child.send('stats')
      const [m] = await answer
      if (!('type' in m)) throw new Error('unexpected message from the token endpoint process')
      return { refreshed: m.refreshed, reused: m.reused, peakInFlight: m.peakInFlight }
    },
    async close() {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill()
      await exited
    },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const endpoint = await startTokenEndpoint({ latencyMs: Number(process.argv[2] ?? 50) })
  process.on('message', (m) => {
    if (m === 'stats') process.send!({ type: 'stats', refreshed: endpoint.refreshed, reused: endpoint.reused, peakInFlight: endpoint.peakInFlight } satisfies Message)
  })
  process.on('disconnect', () => void endpoint.close().then(() => process.exit(0)))
  process.send({ url: endpoint.url } satisfies Message)
}
