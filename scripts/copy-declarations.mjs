#!/usr/bin/env node
// After `tsc -p tsconfig.build.json`: copies the files under src/ that tsc does not emit to the same
// place under dist/ — the hand-off declaration files (the generated HighLevel API types,
// src/api/generated/**/*.d.ts: tsc never emits or copies a .d.ts input, and dist's own declarations
// import them) and JSON data the code reads at run time (the sandbox's compiled copy of HighLevel's
// API, src/sandbox/openapi/spec.json).
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

const from = 'src'
const to = process.argv[2] ?? 'dist'
let copied = 0
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (name.endsWith('.d.ts') || name.endsWith('.json')) {
      const target = join(to, relative(from, p))
      mkdirSync(dirname(target), { recursive: true })
      copyFileSync(p, target)
      copied++
    }
  }
}
walk(from)
console.log(`copied ${copied} declaration and data files to ${to}/`)
