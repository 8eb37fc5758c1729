// Which usernames runway accepts: Django's ASCIIUsernameValidator (letters, digits, @ . + - _),
// at most 150 characters like Django's username field. The CLI and sign-up use the same rule.
export const USERNAME = /^[A-Za-z0-9_.@+-]{1,150}$/

export const UsernameMessages = {
  invalid: 'Enter a valid username. This value may contain only unaccented lowercase a-z and uppercase A-Z letters, numbers, and @/./+/-/_ characters.',
  taken: 'A user with that username already exists.',
} as const

export const isValidUsername = (username: string) => USERNAME.test(username)
