// Runs the echo bot of docs/SDK.md (docs/examples/echo-bot.ts) against a real relay, so the
// documented example cannot silently stop working.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../docs/examples/echo-bot.ts';
import { PASSWORD, startTestRelay, uniqueName, waitFor, type TestRelay } from './helpers/relay.ts';

let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.stop();
});

const texts = (list: { event: { kind: string; body?: string } }[]) => list.map((m) => (m.event.kind === 'text' ? m.event.body : m.event.kind));

describe('the echo bot from docs/SDK.md', () => {
  it('signs up, opens a conversation, greets, echoes what it receives and stops after `count`', async () => {
    const person = relay.client();
    const personName = uniqueName('person');
    const botName = uniqueName('bot');
    await person.signUp(personName, PASSWORD);

    const lines: string[] = [];
    const bot = main({
      baseUrl: relay.url,
      username: botName,
      password: PASSWORD,
      peer: personName,
      greeting: 'hello from the bot',
      count: 2,
      log: (line) => lines.push(line),
    });

    // The bot's conversation reaches the person through a `conv` push; its greeting follows.
    await waitFor(() => person.directWith(botName)?.messages.value.length === 1, 15_000, 'the greeting');
    const conv = person.directWith(botName)!;
    expect(conv.problem.value).toBeNull();
    const greeting = conv.messages.value[0]!;
    expect(greeting.sender).toBe(botName);
    expect(greeting.event).toEqual({ kind: 'text', body: 'hello from the bot' });

    await person.sendText(conv.id, 'one');
    await waitFor(() => conv.messages.value.length === 3, 10_000, 'the first echo');
    await person.sendText(conv.id, 'two');

    const result = await bot;
    expect(result).toEqual({ conversationId: conv.id, echoed: 2 });
    await waitFor(() => conv.messages.value.length === 5, 10_000, 'the second echo');
    expect(texts(conv.messages.value)).toEqual(['hello from the bot', 'one', 'echo: one', 'two', 'echo: two']);
    expect(conv.messages.value.map((m) => m.sender)).toEqual([botName, personName, botName, personName, botName]);
    expect(lines[0]).toBe(`signed up as ${botName}`);
    expect(person.stats.count()).toBe(0);
    person.disconnect();
  });

  it('is quoted verbatim in docs/SDK.md', () => {
    const source = fs.readFileSync(new URL('../docs/examples/echo-bot.ts', import.meta.url), 'utf8');
    const guide = fs.readFileSync(new URL('../docs/SDK.md', import.meta.url), 'utf8');
    expect(guide).toContain('```ts\n' + source + '```\n');
  });
});
