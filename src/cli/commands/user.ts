import { hashPassword, type Argon2Params } from '../../api/auth/passwords.js'
import { passwordProblems } from '../../api/auth/password-rules.js'
import { isValidUsername } from '../../api/auth/usernames.js'
import { DuplicateUserError, type Store } from '../../api/store/store.js'
import { CliError, parseFlags, print, type Command } from '../command.js'
import { withStore } from '../context.js'
import { readNewPassword } from '../password-input.js'

const usage = `Usage: runway user <action> [options]

Actions:
  create --username NAME      create an active user; password from the prompt or stdin
  set-password --username NAME  set a new password (signs out all of the user's sessions)
  deactivate --username NAME  block logins and revoke every session
  activate --username NAME    allow logins again
  delete --username NAME      remove the user (their tokens stop working)
  list [--json]               list users

Options:
  --allow-weak                accept a password that breaks the password rules (at least
                              8 characters, not too similar to the username, not a common
                              password, not entirely numeric)
  --json                      machine-readable output (list)

The password is never taken from the command line. Examples:
  runway user create --username alice                  # prompts twice
  printf %s "$PW" | runway user create --username alice  # from a script`

const ACTIONS = ['create', 'set-password', 'deactivate', 'activate', 'delete', 'list']

async function mustFind(store: Store, username: string | undefined) {
  if (!username) throw new CliError('--username is required (see --help)', 2)
  const user = await store.findUserByUsername(username)
  if (!user) throw new CliError(`no user named ${JSON.stringify(username)}: see \`runway user list\``)
  return user
}

async function newHash(username: string, allowWeak: boolean, params: Argon2Params): Promise<string> {
  const password = await readNewPassword()
  const problems = await passwordProblems(password, username)
  if (problems.length && !allowWeak) throw new CliError(`${problems.join(' ')} Choose another, or pass --allow-weak.`)
  return hashPassword(password, params) // the API's configured argon2id cost
}

export const userCommand: Command = {
  name: 'user',
  summary: 'create, list, deactivate users and set passwords',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { username: { type: 'string' }, json: { type: 'boolean' }, 'allow-weak': { type: 'boolean' } }, true)
    if (values.help) return (print(usage), 0)
    const [action] = positionals
    const allowWeak = values['allow-weak'] ?? false
    if (!ACTIONS.includes(action ?? '')) {
      throw new CliError(`unknown action ${JSON.stringify(action ?? '')}: use ${ACTIONS.join(', ')}`, 2)
    }
    return withStore(async (store, config) => {
      switch (action) {
        case 'create': {
          const username = values.username
          if (!username) throw new CliError('--username is required (see --help)', 2)
          if (!isValidUsername(username)) throw new CliError('usernames are 1-150 letters, digits and @/./+/-/_')
          if (await store.findUserByUsername(username)) throw new CliError(`a user named ${JSON.stringify(username)} already exists`)
          try {
            const user = await store.createUser(username, await newHash(username, allowWeak, config.passwordHash.argon2))
            print(`created user ${user.username} (id ${user.id})`)
          } catch (err) {
            if (err instanceof DuplicateUserError) throw new CliError(err.message)
            throw err
          }
          return 0
        }
        case 'set-password': {
          const user = await mustFind(store, values.username)
          await store.setPassword(user.id, await newHash(user.username, allowWeak, config.passwordHash.argon2))
          print(`password set for ${user.username}; all of their sessions were signed out`)
          return 0
        }
        case 'deactivate':
        case 'activate': {
          const user = await mustFind(store, values.username)
          await store.setActive(user.id, action === 'activate')
          print(`${user.username} is ${action === 'activate' ? 'active' : 'inactive; all of their sessions were signed out'}`)
          return 0
        }
        case 'delete': {
          const user = await mustFind(store, values.username)
          await store.deleteUser(user.id)
          print(`deleted ${user.username}`)
          return 0
        }
        case 'list': {
          const users = await store.listUsers()
          if (values.json) {
            print(JSON.stringify(users.map(({ passwordHash: _, ...u }) => u)))
          } else {
            print('id\tusername\tactive\tlast_login')
            for (const u of users)
              print(`${u.id}\t${u.username}\t${u.isActive ? 'yes' : 'no'}\t${u.lastLogin ? new Date(u.lastLogin * 1000).toISOString() : '-'}`)
          }
          return 0
        }
      }
      return 0
    })
  },
}
