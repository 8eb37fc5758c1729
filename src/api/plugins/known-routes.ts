// The app's own routes as a matcher the 404/405 handler can ask "which methods does this path
// have?" without handing client text to the router. (Fastify's hasRoute/findRoute parse their
// argument as a route pattern: `/**` or `/:a(` from a client threw, and `/:a(^(a+)+$)` compiled
// the client's regex.) Only route definitions registered by the app are ever parsed here.

type Segment = { kind: 'static'; text: string } | { kind: 'param' } | { kind: 'wildcard' }

interface KnownRoute {
  segments: Segment[]
  methods: Set<string>
}

/** `/a/` and `/a` are one path (the router runs with ignoreTrailingSlash). */
const trim = (path: string) => (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path)

function compile(url: string): Segment[] {
  return trim(url)
    .split('/')
    .map((part): Segment => {
      if (part === '*') return { kind: 'wildcard' }
      if (part.startsWith(':')) return { kind: 'param' }
      return { kind: 'static', text: part }
    })
}

function matches(segments: Segment[], parts: string[]): boolean {
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!
    if (s.kind === 'wildcard') return true
    const part = parts[i]
    if (part === undefined) return false
    if (s.kind === 'param' ? part === '' : part !== s.text) return false
  }
  return segments.length === parts.length
}

export class KnownRoutes {
  private readonly routes = new Map<string, KnownRoute>()

  add(url: string, methods: string | string[]): void {
    const key = trim(url)
    const route = this.routes.get(key) ?? { segments: compile(url), methods: new Set<string>() }
    for (const m of Array.isArray(methods) ? methods : [methods]) route.methods.add(m.toUpperCase())
    this.routes.set(key, route)
  }

  /** The methods some route answers on this request path (query string already removed). */
  methodsFor(path: string): string[] {
    const parts = trim(path).split('/')
    const found = new Set<string>()
    for (const r of this.routes.values()) if (matches(r.segments, parts)) for (const m of r.methods) found.add(m)
    return [...found]
  }
}
