// The SDK under conditions a person meets: an ended session, a message that cannot be sent,
// and a UI that must be able to paint progress before key derivation blocks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UmbraError } from '../../client/sdk/index.ts';
import { PASSWORD, startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';
import { RelayTamper, bodies, chatPair } from '../helpers/tamper.ts';

let relay: TestRelay;
let evil: RelayTamper;
beforeAll(async () => {
  relay = await startTestRelay();
  evil = new RelayTamper(relay);
});
afterAll(async () => {
  await relay.stop();
});

describe('an ended session', () => {
  it('ends the connection state instead of retrying forever, and reconnect says why', async () => {
    const { alice, a } = await chatPair(relay);
    expect(alice.status.value).toBe('online');
    // The session disappears on the relay (expiry, log-out elsewhere); then the link drops.
    relay.db.sqlite.prepare('DELETE FROM sessions WHERE user_id = ?').run(evil.userId(a));
    alice.disconnect();
    await expect(alice.reconnect()).rejects.toMatchObject({ code: 'unauthorized' });
    await waitFor(() => alice.status.value === 'session-ended', 5000, 'session-ended status');
  });
});

describe('messages that cannot be sent', () => {
  it('an empty or oversize message is refused with a typed error and spends no counter', async () => {
    const { alice, bob, conv, bobConv } = await chatPair(relay);
    const before = evil.envelopeCount();
    await expect(alice.sendText(conv.id, '')).rejects.toBeInstanceOf(UmbraError);
    await expect(alice.sendText(conv.id, '')).rejects.toMatchObject({ code: 'bad_request' });
    // Control characters are escaped six bytes each in JSON: under the character cap, over the byte cap.
    const huge = '\u0001'.repeat(16 * 1024);
    await expect(alice.sendText(conv.id, huge)).rejects.toMatchObject({ code: 'payload_too_large' });
    expect(evil.envelopeCount()).toBe(before);
    expect(alice.status.value).toBe('online');
    await alice.sendText(conv.id, 'after the refusals');
    await waitFor(() => bodies(bobConv).includes('after the refusals'), 5000, 'bob receives');
    expect(bobConv.notices.value).toEqual([]);
    expect(bob.stats.count()).toBe(0);
  });
});

describe('progress', () => {
  it('waits for the progress callback before each step, so a UI can paint first', async () => {
    const client = relay.client();
    const seen: string[] = [];
    let painted = 0;
    await client.signUp(uniqueName('prog'), PASSWORD, async (p) => {
      seen.push(p);
      await new Promise((r) => setTimeout(r, 5));
      painted++;
    });
    expect(seen).toEqual(['checking-password', 'deriving-keys', 'generating-keys', 'contacting-relay']);
    expect(painted).toBe(seen.length);
    client.disconnect();
  });
});
