// The password rule: at least 8 characters, long ones welcome, no composition rules, and the
// most common passwords refused (NIST SP 800-63B §3.1.1.2). Checked in the client: the relay
// never sees the password, so it cannot check it.
import { PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, UmbraError } from '../../shared/index.ts';

let common: Promise<Set<string>> | undefined;

/** Loads the list of ~49,000 common passwords (zxcvbn-ts's list) on first use. */
function commonPasswords(): Promise<Set<string>> {
  common ??= import('@zxcvbn-ts/language-common').then(
    (m) => new Set((m.dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase())),
  );
  return common;
}

/** Throws `weak_password` with words a person understands. */
export async function checkPasswordPolicy(password: string, username: string): Promise<void> {
  const chars = [...password.normalize('NFKC')].length;
  if (chars < PASSWORD_MIN_CHARS) {
    throw new UmbraError('weak_password', `Use at least ${PASSWORD_MIN_CHARS} characters.`);
  }
  if (chars > PASSWORD_MAX_CHARS) throw new UmbraError('weak_password', `Use at most ${PASSWORD_MAX_CHARS} characters.`);
  const lower = password.toLowerCase();
  if (lower === username.toLowerCase()) throw new UmbraError('weak_password', 'Your password cannot be your username.');
  if ((await commonPasswords()).has(lower)) {
    throw new UmbraError('weak_password', 'That password is one of the most common ones; choose another.');
  }
}
