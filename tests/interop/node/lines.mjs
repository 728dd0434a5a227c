// JSON lines with the Python test: one message a line on stdin and stdout.
import { createInterface } from 'node:readline'

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

export async function receive() {
  const { value, done } = await lines.next()
  if (done) throw new Error('stdin closed before the next message')
  return JSON.parse(value)
}

export function send(message) {
  process.stdout.write(JSON.stringify(message) + '\n')
}

// Runs a scenario; a failure becomes one message the test reports, with the library's cause.
export async function run(scenario) {
  try {
    await scenario()
  } catch (err) {
    const cause = err?.cause ? ` (${JSON.stringify(err.cause)})` : ''
    send({ kind: 'failure', error: `${err?.name}: ${err?.message}${cause}` })
    process.exitCode = 1
  }
  process.stdin.destroy()
}
