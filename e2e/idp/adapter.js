// A plain Map-backed storage adapter for node-oidc-provider.
//
// The provider's built-in development adapter is an LRU capped at about a
// thousand entries, so under benchmark load older tokens silently vanish and
// introspection starts answering {"active":false}. This adapter keeps every
// entry until it expires. Expiry is checked when an entry is read, and a
// background sweep (unref'd, so it never keeps the process alive) drops expired
// entries so that memory stays bounded during long runs.
//
// One instance is created per model name (AccessToken, ClientCredentials,
// Grant, Session, ReplayDetection, ...); all instances share the module-level
// maps below, which is fine because a process runs a single provider.

const models = new Map(); // model name -> Map<id, { payload, expiresAt }>
const grantIndex = new Map(); // grantId -> Set<"model\0id">
const userCodeIndex = new Map(); // "model\0userCode" -> id
const uidIndex = new Map(); // "model\0uid" -> id

const SWEEP_INTERVAL_MS = 30_000;

function storeFor(model) {
  let store = models.get(model);
  if (!store) {
    store = new Map();
    models.set(model, store);
  }
  return store;
}

function ref(model, id) {
  return `${model}\0${id}`;
}

function unref(key) {
  const i = key.indexOf('\0');
  return [key.slice(0, i), key.slice(i + 1)];
}

function isExpired(entry, now = Date.now()) {
  return entry.expiresAt !== undefined && entry.expiresAt <= now;
}

function remove(model, id) {
  const store = models.get(model);
  const entry = store?.get(id);
  if (!entry) return;
  store.delete(id);
  const key = ref(model, id);
  const { grantId, userCode, uid } = entry.payload;
  if (grantId) {
    const members = grantIndex.get(grantId);
    if (members) {
      members.delete(key);
      if (members.size === 0) grantIndex.delete(grantId);
    }
  }
  if (userCode && userCodeIndex.get(ref(model, userCode)) === id) {
    userCodeIndex.delete(ref(model, userCode));
  }
  if (uid && uidIndex.get(ref(model, uid)) === id) uidIndex.delete(ref(model, uid));
}

function lookup(model, id) {
  if (id === undefined) return undefined;
  const entry = models.get(model)?.get(id);
  if (!entry) return undefined;
  if (isExpired(entry)) {
    remove(model, id);
    return undefined;
  }
  return entry;
}

export function sweep() {
  const now = Date.now();
  let removed = 0;
  for (const [model, store] of models) {
    for (const [id, entry] of store) {
      if (isExpired(entry, now)) {
        remove(model, id);
        removed += 1;
      }
    }
  }
  return removed;
}

export function stats() {
  const out = {};
  for (const [model, store] of models) out[model] = store.size;
  return out;
}

setInterval(sweep, SWEEP_INTERVAL_MS).unref();

export default class MapAdapter {
  constructor(model) {
    this.model = model;
    this.store = storeFor(model);
  }

  async upsert(id, payload, expiresIn) {
    // Replace cleanly so stale secondary indexes never point at the new value.
    remove(this.model, id);
    const expiresAt = typeof expiresIn === 'number' && expiresIn > 0
      ? Date.now() + expiresIn * 1000
      : undefined;
    this.store.set(id, { payload, expiresAt });

    const key = ref(this.model, id);
    const { grantId, userCode, uid } = payload;
    if (grantId) {
      let members = grantIndex.get(grantId);
      if (!members) {
        members = new Set();
        grantIndex.set(grantId, members);
      }
      members.add(key);
    }
    if (userCode) userCodeIndex.set(ref(this.model, userCode), id);
    if (uid) uidIndex.set(ref(this.model, uid), id);
  }

  async find(id) {
    return lookup(this.model, id)?.payload;
  }

  async findByUserCode(userCode) {
    return lookup(this.model, userCodeIndex.get(ref(this.model, userCode)))?.payload;
  }

  async findByUid(uid) {
    return lookup(this.model, uidIndex.get(ref(this.model, uid)))?.payload;
  }

  async consume(id) {
    const entry = lookup(this.model, id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    remove(this.model, id);
  }

  async revokeByGrantId(grantId) {
    const members = grantIndex.get(grantId);
    if (!members) return;
    for (const key of [...members]) {
      const [model, id] = unref(key);
      remove(model, id);
    }
    grantIndex.delete(grantId);
  }
}
