// Storage adapter of the IdP that bench/chaos.sh restarts: the e2e IdP's MapAdapter (in memory)
// plus an append-only journal file, replayed at start, so that tokens survive a restart, even one
// by SIGKILL. bench/chaos.sh runs an unmodified copy of e2e/idp/server.js from its work directory
// with this file as its ./adapter.js and e2e/idp/adapter.js as ./map-adapter.js; e2e/idp itself
// stays in memory only.
//
// Environment: IDP_JOURNAL, the journal's path (required). One JSON record per line:
//   {"op":"set","m":model,"id":id,"p":payload,"exp":ms since epoch or null}
//   {"op":"del","m":model,"id":id}
//   {"op":"grant","g":grantId}                    (revokeByGrantId)
//   {"op":"consume","m":model,"id":id,"at":secs}
// appendFileSync writes each record before the provider goes on, so a record the provider relied on
// is in the page cache when the process is killed; a torn last line is skipped at replay.

import { appendFileSync, existsSync, readFileSync } from 'node:fs';

import MapAdapter from './map-adapter.js';

const journal = process.env.IDP_JOURNAL;
if (!journal) {
  console.error('[idp] error: IDP_JOURNAL is not set');
  process.exit(1);
}

function record(rec) {
  appendFileSync(journal, `${JSON.stringify(rec)}\n`);
}

function replay() {
  if (!existsSync(journal)) return;
  const live = new Map(); // "model\0id" -> set record
  let torn = 0;
  for (const line of readFileSync(journal, 'utf8').split('\n')) {
    if (line === '') continue;
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      torn += 1;
      continue;
    }
    const key = `${r.m}\0${r.id}`;
    if (r.op === 'set') live.set(key, r);
    else if (r.op === 'del') live.delete(key);
    else if (r.op === 'consume') {
      const e = live.get(key);
      if (e) e.p.consumed = r.at;
    } else if (r.op === 'grant') {
      for (const [k, e] of live) if (e.p?.grantId === r.g) live.delete(k);
    }
  }
  const now = Date.now();
  let restored = 0;
  for (const r of live.values()) {
    if (r.exp !== null && r.exp <= now) continue;
    // MapAdapter.upsert has no await: the entry is stored before it returns.
    new MapAdapter(r.m).upsert(r.id, r.p, r.exp === null ? undefined : (r.exp - now) / 1000);
    restored += 1;
  }
  console.error(`[idp] journal ${journal}: ${restored} entries restored${torn ? `, ${torn} torn lines skipped` : ''}`);
}

replay();

export default class JournalAdapter extends MapAdapter {
  async upsert(id, payload, expiresIn) {
    const exp = typeof expiresIn === 'number' && expiresIn > 0 ? Date.now() + expiresIn * 1000 : null;
    record({ op: 'set', m: this.model, id, p: payload, exp });
    return super.upsert(id, payload, expiresIn);
  }

  async destroy(id) {
    record({ op: 'del', m: this.model, id });
    return super.destroy(id);
  }

  async consume(id) {
    record({ op: 'consume', m: this.model, id, at: Math.floor(Date.now() / 1000) });
    return super.consume(id);
  }

  async revokeByGrantId(grantId) {
    record({ op: 'grant', g: grantId });
    return super.revokeByGrantId(grantId);
  }
}
