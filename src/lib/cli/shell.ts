/** Shell words for commands natix prints for the user to copy (resume hints, next steps). */

/** Quotes a shell word when it needs it (POSIX single quotes). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9._/:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
