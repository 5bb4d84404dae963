#!/usr/bin/env node
// After `tsc -p tsconfig.build.json`: copies the hand-off declaration files under src/ (the generated
// HighLevel API types, src/api/generated/**/*.d.ts) to the same place under dist/. tsc never emits or
// copies a .d.ts input, and dist's own declarations import them.
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

const from = 'src'
const to = process.argv[2] ?? 'dist'
let copied = 0
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (name.endsWith('.d.ts')) {
      const target = join(to, relative(from, p))
      mkdirSync(dirname(target), { recursive: true })
      copyFileSync(p, target)
      copied++
    }
  }
}
walk(from)
console.log(`copied ${copied} declaration files to ${to}/`)
