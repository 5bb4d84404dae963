/**
 * The SQLite vault holds (encrypted) tokens: its file, its WAL and its shared-memory file are readable
 * by their owner only (0600) — when the vault creates them, and when it opens files an older version or
 * another tool created with wider permissions.
 *
 * The umask is set to the common 022 for these tests, so that without the vault's own care the files
 * would be created 0644 (a umask of 077 would hide the difference).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { parseKeys } from '../../src/config.js'
import { createVault } from '../../src/vault/create-vault.js'
import { tempDir, testKey } from '../helpers/services.js'

const mode = (file: string): string => (statSync(file).mode & 0o777).toString(8)
let umask: number
before(() => {
  umask = process.umask(0o022)
})
after(() => {
  process.umask(umask)
})

async function writeOne(databaseUrl: string): Promise<void> {
  const vault = await createVault({ databaseUrl, keys: parseKeys(testKey()) })
  try {
    await vault.installations.upsert({
      clientId: 'perm1234-client', companyId: 'Co1', locationId: 'Loc1', userType: 'Location', scopes: ['contacts.readonly'], source: 'oauth',
      tokens: { accessToken: 'at-1', refreshToken: 'rt-1', expiresAt: new Date(Date.now() + 3600_000) },
    })
    // While the vault is open, its WAL and shared-memory files exist beside the database.
    for (const f of [databaseUrl, `${databaseUrl}-wal`, `${databaseUrl}-shm`]) {
      assert.ok(existsSync(f), `${f} exists`)
      assert.equal(mode(f), '600', `${f} is ${mode(f)}`)
    }
  } finally {
    await vault.close()
  }
}

test('a new SQLite vault: the database, its WAL and SHM are created 0600 (in a folder it creates)', async () => {
  const dir = tempDir()
  try {
    await writeOne(join(dir.path, 'nested', 'vault.db'))
  } finally {
    dir.remove()
  }
})

test('files created 0644 by another program are restricted to 0600 when the vault opens them', async () => {
  const dir = tempDir()
  const databaseUrl = join(dir.path, 'vault.db')
  // Another program made the database in WAL mode and still holds it open, so -wal and -shm exist.
  const other = new Database(databaseUrl)
  try {
    other.pragma('journal_mode = WAL')
    other.exec('create table note (x text); insert into note values (1)')
    for (const f of [databaseUrl, `${databaseUrl}-wal`, `${databaseUrl}-shm`]) assert.equal(mode(f), '644', `precondition: ${f}`)
    await writeOne(databaseUrl)
  } finally {
    other.close()
    dir.remove()
  }
})
