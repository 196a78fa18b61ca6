/**
 * A table that features fill at load time, each with its own rows beside its routes (error codes, audit event
 * types): the kernel lists none of them, and a name declared twice is a mistake found at start.
 */
export function declarations<Row>(what: string) {
  const rows = new Map<string, Row>();
  return {
    /** Adds `table`'s rows; returns it as it is, for its type. */
    define<const T extends Record<string, Row>>(table: T): T {
      for (const [name, row] of Object.entries(table)) {
        if (rows.has(name)) throw new Error(`${what} ${name} is declared twice`);
        rows.set(name, row as Row);
      }
      return table;
    },
    get: (name: string): Row | undefined => rows.get(name),
    /** Every row, in the order declared. */
    entries: (): [string, Row][] => [...rows],
  };
}
