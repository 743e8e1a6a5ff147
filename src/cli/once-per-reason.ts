/**
 * `print`, called once per distinct reason (a message): a failure repeated at every try (a sweep
 * each minute, say) is told once. At most `max` reasons are remembered; past them, none is told.
 */
export function oncePerReason(print: (reason: string) => void, max = 100): (reason: string) => void {
  const told = new Set<string>();
  return (reason) => {
    if (told.has(reason) || told.size >= max) return;
    told.add(reason);
    print(reason);
  };
}
