/**
 * A route table: each route is methods + a path (`/actions/:key`) + a handler over
 * {@link HttpRequest} → {@link HttpResponse}. {@link RouteTable.handle} matches, reads the body the
 * route takes, runs it, and turns anything thrown into the one error body — it never throws, so an
 * adapter only translates the request in and the answer out.
 */
import type { ErrorCode } from '../errors.js'
import type { Logger } from '../logger.js'
import { BodyError, parseBody, responseFromError, errorResponse, type HttpRequest, type HttpResponse } from './http-exchange.js'

/** A request as a route's handler sees it: path parameters and its body read. */
export interface RouteInput extends HttpRequest {
  params: Record<string, string>
  /** `raw` routes: the exact bytes; `parsed` routes: the JSON or form fields; `none`: undefined. */
  body: unknown
}

/** One route. */
export interface Route {
  methods: readonly string[]
  /** `/segment/:param/…`: a parameter matches one non-empty segment (percent-decoded). */
  path: string
  /**
   * `raw`: the handler gets the exact bytes (webhook signatures are checked over them); `parsed`: JSON
   * or form fields; `none`: no body is read.
   */
  body: 'raw' | 'parsed' | 'none'
  /** The largest body read (default 1 MiB); a longer one is answered 413 with {@link tooLargeCode}. */
  maxBodyBytes?: number
  tooLargeCode?: ErrorCode
  handle(input: RouteInput): Promise<HttpResponse>
}

/** A route that matched a request, with its path parameters. */
export interface RouteMatch {
  route: Route
  params: Record<string, string>
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024

/** See the file comment. */
export class RouteTable {
  readonly routes: readonly Route[]
  readonly #logger: Logger
  readonly #compiled: Array<{ route: Route; segments: string[] }>

  constructor(routes: readonly Route[], logger: Logger) {
    this.routes = Object.freeze([...routes])
    this.#logger = logger
    this.#compiled = this.routes.map((route) => ({ route, segments: route.path.split('/').slice(1) }))
  }

  /** The route for a method and path (relative to the mount point), or `undefined`. */
  match(method: string, path: string): RouteMatch | undefined {
    const wanted = path.split('/').slice(1)
    const m = method.toUpperCase()
    // HEAD is answered like GET (its body is dropped by the server).
    const methods = m === 'HEAD' ? ['HEAD', 'GET'] : [m]
    for (const { route, segments } of this.#compiled) {
      if (!route.methods.some((x) => methods.includes(x))) continue
      if (segments.length !== wanted.length) continue
      const params: Record<string, string> = {}
      let ok = true
      for (let i = 0; i < segments.length && ok; i++) {
        const s = segments[i]!
        const w = wanted[i]!
        if (s.startsWith(':')) {
          if (w === '') ok = false
          else {
            try {
              params[s.slice(1)] = decodeURIComponent(w)
            } catch {
              ok = false
            }
          }
        } else ok = s === w
      }
      if (ok) return { route, params }
    }
    return undefined
  }

  /** The 413 answer of a route whose body is over its limit. */
  tooLarge(route: Route): HttpResponse {
    const max = route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
    return errorResponse(route.tooLargeCode ?? 'GHL_BAD_REQUEST', `Request body is larger than ${max} bytes`, 413)
  }

  /** Runs a matched route. Never throws. */
  async run(match: RouteMatch, req: HttpRequest): Promise<HttpResponse> {
    const { route, params } = match
    try {
      let body: unknown
      if (route.body === 'raw') {
        if (!req.rawBody && req.parsedBody !== undefined) {
          throw new BodyError(
            400,
            `${route.path} needs the exact bytes of the request, but a body parser of the app read them first: mount ghl-connect's routes before body parsers (e.g. before express.json())`,
          )
        }
        body = req.rawBody ?? Buffer.alloc(0)
        if ((body as Buffer).length > (route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)) return this.tooLarge(route)
      } else if (route.body === 'parsed') {
        if (req.rawBody && req.rawBody.length > (route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES)) return this.tooLarge(route)
        body = parseBody(req)
      }
      return await route.handle({ ...req, params, body })
    } catch (err) {
      return responseFromError(err, this.#logger)
    }
  }

  /** Matches and runs; `undefined` when no route matches (the adapter passes the request on, or answers 404). */
  async handle(req: HttpRequest): Promise<HttpResponse | undefined> {
    const match = this.match(req.method, req.path)
    return match ? this.run(match, req) : undefined
  }
}
