// Signed membership statements. A conversation begins with a genesis statement signed by its
// creator that lists every member with the identity key the creator saw (docs/PROTOCOL.md §Membership).
import { CTX } from '../protocol.ts';
import { GenesisStatementSchema, type GenesisStatement } from '../schemas.ts';
import { fromUtf8, utf8 } from './bytes.ts';
import { signWithContext, verifyWithContext } from './sign.ts';

export interface SignedStatement {
  /** The exact JSON text that was signed. */
  statement: string;
  sig: Uint8Array;
}

export function signGenesis(genesis: GenesisStatement, signingSecret: Uint8Array): SignedStatement {
  const statement = JSON.stringify(genesis);
  return { statement, sig: signWithContext(signingSecret, CTX.membershipSig, utf8(statement)) };
}

/**
 * Parses the statement and checks that `creatorKey` signed it. Returns null when the signature,
 * the JSON or its shape is wrong; the caller still checks who the creator is.
 */
export function verifyGenesis(signed: SignedStatement, creatorKey: Uint8Array): GenesisStatement | null {
  if (!verifyWithContext(creatorKey, CTX.membershipSig, utf8(signed.statement), signed.sig)) return null;
  try {
    return GenesisStatementSchema.parse(JSON.parse(fromUtf8(utf8(signed.statement))));
  } catch {
    return null;
  }
}

/** Reads the statement without checking it, to learn whose key must verify it. */
export function peekGenesis(statement: string): GenesisStatement | null {
  try {
    return GenesisStatementSchema.parse(JSON.parse(statement));
  } catch {
    return null;
  }
}
