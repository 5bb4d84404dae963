/**
 * Which HighLevel operation a raw request is: `matchOperation('GET', '/contacts/abc?x=1')` → the
 * `get-contact` operation (operationId, Version, token kinds, scopes), or `undefined`.
 *
 * For the proxy, which receives HighLevel paths it did not build. The operations are compiled once
 * into a trie per method (one node per path segment; a literal segment before a `{parameter}`), so a
 * match walks the request's few segments instead of testing every template. A trailing slash is not
 * significant (`/contacts` and `/contacts/` are the same route; the generator refuses templates that
 * differ only by one). A parameter matches any non-empty segment as it arrives (still percent-encoded).
 *
 * @example
 * const op = matchOperation(req.method, rawPathAfterProxyPrefix, { version: req.headers.version })
 * if (op) await client.forTarget(target).request(req.method, path, { operation: op, … })
 */
import { API_OPERATIONS, API_V3_OPERATIONS, type ApiOperation } from './operation.js'

interface Node {
  literal: Map<string, Node> | undefined
  param: Node | undefined
  op: ApiOperation | undefined
}

type Trie = Map<string, Node>

function node(): Node {
  return { literal: undefined, param: undefined, op: undefined }
}

/** Segments of a path without its query/fragment, leading slash and trailing slash. */
function segments(path: string): string[] {
  let end = path.length
  const q = path.indexOf('?')
  if (q >= 0) end = q
  const h = path.indexOf('#')
  if (h >= 0 && h < end) end = h
  let start = path.charCodeAt(0) === 47 /* / */ ? 1 : 0
  if (end > start && path.charCodeAt(end - 1) === 47) end--
  return end > start ? path.slice(start, end).split('/') : []
}

function build(operations: readonly ApiOperation[]): Trie {
  const trie: Trie = new Map()
  for (const op of operations) {
    let n = trie.get(op.method)
    if (!n) trie.set(op.method, (n = node()))
    for (const seg of segments(op.path)) {
      if (seg.startsWith('{')) n = n.param ??= node()
      else {
        n.literal ??= new Map()
        let next = n.literal.get(seg)
        if (!next) n.literal.set(seg, (next = node()))
        n = next
      }
    }
    n.op = op
  }
  return trie
}

function walk(n: Node, segs: readonly string[], i: number): ApiOperation | undefined {
  if (i === segs.length) return n.op
  const seg = segs[i]!
  const lit = n.literal?.get(seg)
  if (lit) {
    const found = walk(lit, segs, i + 1)
    if (found) return found
  }
  // A literal that leads nowhere falls back to a parameter: /contacts/search/x may be /contacts/{id}/x.
  if (n.param && seg !== '') return walk(n.param, segs, i + 1)
  return undefined
}

let v2: Trie | undefined
let v3: Trie | undefined

/** Options of {@link matchOperation}. */
export interface MatchOptions {
  /** The request's `Version` header: `v3` looks among the v3 operations; anything else among v2. */
  version?: string | string[] | undefined
}

/**
 * The operation a method and raw path (no `/proxy/...` prefix; a query string is ignored) name, or
 * `undefined`. See the file comment.
 */
export function matchOperation(method: string, rawPath: string, options?: MatchOptions): ApiOperation | undefined {
  const version = Array.isArray(options?.version) ? options.version[0] : options?.version
  const trie = version === 'v3' ? (v3 ??= build(API_V3_OPERATIONS)) : (v2 ??= build(API_OPERATIONS))
  const root = trie.get(method.toUpperCase())
  return root === undefined ? undefined : walk(root, segments(rawPath), 0)
}
