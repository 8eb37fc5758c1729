// Passwords come from a prompt (no echo) on a terminal, or from stdin in scripts — never argv,
// where `ps` and shell history would show them.
import { createInterface } from 'node:readline'
import { CliError } from './command.js'

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? ''
}

function promptHidden(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true })
    const write = (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput
    ;(rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.startsWith(question)) write.call(rl, question)
    }
    rl.question(question, (answer) => {
      rl.close()
      process.stderr.write('\n')
      resolve(answer)
    })
  })
}

export async function readNewPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const password = await readStdin()
    if (!password) throw new CliError('no password on stdin: pipe one in, e.g. `printf %s "$PW" | runway user create --username alice`')
    return password
  }
  const first = await promptHidden('Password: ')
  const second = await promptHidden('Password (again): ')
  if (first !== second) throw new CliError("the passwords didn't match: run the command again")
  return first
}
