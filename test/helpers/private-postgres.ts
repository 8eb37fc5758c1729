// A private PostgreSQL cluster for one test (src/bench/stacks/postgres.ts), destroyed at teardown even
// when the test failed.
import type { Test } from 'tap'
import { startPrivatePostgres, type PrivatePostgres, type PrivatePostgresOptions } from '../../src/bench/stacks/postgres.js'

export { privatePostgresProblem, type PrivatePostgres } from '../../src/bench/stacks/postgres.js'

export async function privatePostgres(t: Test, o: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const db = await startPrivatePostgres(o)
  t.teardown(() => db.destroy())
  return db
}
