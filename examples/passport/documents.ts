// Each tenant's documents, and who may open them: the room policy of the tenant namespaces.
// A document's room is `doc:<id>`; socket.join() of it is checked by requireAuth's `rooms`, at
// the join and again whenever refreshUser (or a revalidation) decides again.

/** A document of a tenant: everyone in the tenant may open it, or only its admins. */
export interface Doc {
  id: string;
  title: string;
  /** `members`: every member of the tenant; `admins`: only users whose role is `admin`. */
  audience: 'members' | 'admins';
}

const DOCS: Readonly<Record<string, readonly Doc[]>> = {
  acme: [
    { id: 'roadmap', title: 'Roadmap', audience: 'members' },
    { id: 'salaries', title: 'Salaries', audience: 'admins' },
  ],
  globex: [
    { id: 'handbook', title: 'Handbook', audience: 'members' },
    { id: 'budget', title: 'Budget', audience: 'admins' },
  ],
};

/** A tenant's documents (none for a tenant the demo does not know). */
export function documentsOf(tenant: string): readonly Doc[] {
  return Object.hasOwn(DOCS, tenant) ? (DOCS[tenant] ?? []) : [];
}

/** Whether `user` may open document `id` of `tenant`: a member of it, and an admin if need be. */
export function mayOpen(user: Express.User, tenant: string, id: string): boolean {
  const doc = documentsOf(tenant).find((d) => d.id === id);
  if (!doc || !user.tenants.includes(tenant)) return false;
  return doc.audience === 'members' || user.role === 'admin';
}
