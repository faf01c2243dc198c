// Join requests as an admin's client handles them: each signed request is checked against the
// requester's key in the directory (pinned on first sight); an open room admits it at once, a
// private room lists it until an admin approves or declines it (docs/PROTOCOL.md §Rooms).
import { signal, type ReadonlySignal } from '@preact/signals-core';
import {
  OkResponse,
  PendingJoinRequests,
  UmbraError,
  equalBytes,
  fromB64,
  isAdmin,
  verifyJoinRequest,
} from '../../shared/index.ts';
import { addPlan, type ChangeTarget, type Plan } from './room-changes.ts';

/** A join request whose signature and key checked out. */
export interface JoinRequestView {
  username: string;
  identityKey: Uint8Array;
  /** When the requester signed it (their clock). */
  at: number;
}

export class JoinRequests {
  private readonly pendingSignal = signal<JoinRequestView[]>([]);

  constructor(
    private readonly t: ChangeTarget,
    private readonly change: (plan: Plan) => Promise<boolean>,
  ) {}

  /** Verified requests waiting for an admin (private rooms; an open room lists only those it failed to admit). */
  get pending(): ReadonlySignal<JoinRequestView[]> {
    return this.pendingSignal;
  }

  private amAdmin(): boolean {
    return isAdmin(this.t.current().chain.head.members.get(this.t.deps.me.username)?.role);
  }

  /**
   * Fetches the waiting requests. In an open room each verified one is admitted; in a private
   * room (or while the settings are unreadable) they are listed for approval.
   */
  async review(): Promise<void> {
    if (!this.amAdmin()) {
      this.pendingSignal.value = [];
      return;
    }
    const valid = await this.fetchVerified();
    if (this.t.current().meta?.policy !== 'open') {
      this.pendingSignal.value = valid;
      return;
    }
    const left: JoinRequestView[] = [];
    for (const r of valid) {
      try {
        await this.admit(r);
      } catch {
        // Not admitted (a key that changed since, a change that kept losing races): listed for an admin.
        left.push(r);
      }
    }
    this.pendingSignal.value = left;
  }

  async approve(username: string): Promise<void> {
    let request = this.pendingSignal.value.find((r) => r.username === username);
    if (!request) {
      this.pendingSignal.value = await this.fetchVerified();
      request = this.pendingSignal.value.find((r) => r.username === username);
    }
    if (!request) throw new UmbraError('not_found', `no verified request from ${username} to join this room`);
    await this.admit(request);
    this.drop(username);
  }

  async decline(username: string): Promise<void> {
    if (!this.amAdmin()) throw new UmbraError('forbidden', 'only an admin of this room can do that');
    await this.t.deps.http.post(`/api/rooms/${this.t.id}/requests/${encodeURIComponent(username)}/decline`, {}, OkResponse);
    this.drop(username);
  }

  /** A member was added (by any admin): their request is settled. */
  settle(members: ReadonlySet<string>): void {
    if (this.pendingSignal.value.some((r) => members.has(r.username))) {
      this.pendingSignal.value = this.pendingSignal.value.filter((r) => !members.has(r.username));
    }
  }

  private drop(username: string): void {
    this.pendingSignal.value = this.pendingSignal.value.filter((r) => r.username !== username);
  }

  /** The relay's list, keeping only requests for this room, signed by the key the directory has for the requester. */
  private async fetchVerified(): Promise<JoinRequestView[]> {
    const res = await this.t.deps.http.get(`/api/rooms/${this.t.id}/requests`, PendingJoinRequests);
    const members = this.t.current().chain.head.members;
    const parsed = res.requests.flatMap((s) => {
      const r = verifyJoinRequest({ statement: s.statement, sig: fromB64(s.sig) });
      return r && r.conv === this.t.id && !members.has(r.username) ? [r] : [];
    });
    const contacts = await this.t.deps.directory.lookupMany(parsed.map((r) => r.username));
    const seen = new Set<string>();
    const out: JoinRequestView[] = [];
    for (const r of parsed) {
      const c = contacts.get(r.username);
      const key = fromB64(r.identityKey);
      if (seen.has(r.username) || !c || c instanceof UmbraError || !equalBytes(c.identityKey, key)) continue;
      seen.add(r.username);
      out.push({ username: r.username, identityKey: key, at: r.at });
    }
    return out;
  }

  private async admit(r: JoinRequestView): Promise<void> {
    const contact = await this.t.deps.directory.lookup(r.username);
    if (!equalBytes(contact.identityKey, r.identityKey)) {
      throw new UmbraError('identity_changed', `${r.username}'s request is signed with a key the directory does not have for them`);
    }
    await this.change(addPlan(this.t, contact, 'member', 'join'));
  }
}
