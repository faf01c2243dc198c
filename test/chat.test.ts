import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, startTestRelay, uniqueName, waitFor, type TestRelay } from './helpers/relay.ts';

let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.stop();
});

describe('1:1 chat over the real relay', () => {
  it('two users sign up, find each other and chat both ways', async () => {
    const alice = relay.client();
    const bob = relay.client();
    const a = uniqueName('alice');
    const b = uniqueName('bob');
    await alice.signUp(a, PASSWORD);
    await bob.signUp(b, PASSWORD);
    const conv = await alice.startConversation(b);
    const sent = await alice.sendText(conv.id, 'hello bob');
    expect(sent.seq).toBe(1);
    await waitFor(() => bob.conversation(conv.id)?.messages.value.length === 1, 5000, 'bob receives');
    const bconv = bob.conversation(conv.id)!;
    expect(bconv.messages.value[0]!.event).toEqual({ kind: 'text', body: 'hello bob' });
    expect(bconv.messages.value[0]!.sender).toBe(a);
    await bob.sendText(conv.id, 'hi alice');
    await waitFor(() => conv.messages.value.length === 2, 5000, 'alice receives');
    expect(conv.messages.value.map((m) => m.event)).toEqual([
      { kind: 'text', body: 'hello bob' },
      { kind: 'text', body: 'hi alice' },
    ]);
    expect(alice.stats.count()).toBe(0);
    expect(bob.stats.count()).toBe(0);
    alice.disconnect();
    bob.disconnect();
  });
});
