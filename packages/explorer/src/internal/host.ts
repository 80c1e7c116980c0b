/**
 * Which `Host` a request may name. A browser sends the name it resolved, so a page of another site that points its
 * own domain name at 127.0.0.1 (DNS rebinding) names that domain: refusing it keeps such a page from reading the log.
 */

// An IPv4 loopback literal (127.0.0.0/8), not any name that starts with "127.": `127.attacker.example` can resolve
// to 127.0.0.1 and is the very DNS-rebinding name the check is there to refuse.
const ipv4Loopback = /^127(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/** Whether `host` (a name or address, without port) is this machine: `localhost`, `::1` or 127.x.y.z. */
export const loopback = (host: string): boolean => host === "localhost" || ipv4Loopback.test(host) || host === "::1"

/** The name of a `Host` header, without its port and brackets (`[::1]:4000` → `::1`), lower-cased. */
export const hostName = (header: string | undefined): string =>
  (header === undefined
    ? ""
    : header.startsWith("[")
      ? header.slice(1, header.indexOf("]"))
      : header.split(":")[0]!
  ).toLowerCase()

/** Whether a request with `header` as its `Host` is let in: by `allowed` names, or `"any"`, or loopback names only. */
export const allowed = (header: string | undefined, hosts: ReadonlyArray<string> | "any" | undefined): boolean => {
  if (hosts === "any") return true
  const name = hostName(header)
  return hosts === undefined ? loopback(name) : hosts.some((host) => host.toLowerCase() === name)
}
