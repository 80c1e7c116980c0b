import { EventStore, type StreamName } from "@evently/store"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"

/**
 * A minimal in-memory log behind the `EventStore` port (append with `Any`, `readAll`), standing in for
 * `EventStore.layerMemory` while it is built on another branch.
 */
export const layerLog = Layer.sync(EventStore.EventStore, () => {
  const log: Array<EventStore.RecordedEvent> = []
  const versions = new Map<string, number>()
  const readAll = (options?: EventStore.ReadLogOptions) =>
    Stream.suspend(() => {
      const after = options?.after ?? 0n
      const rows = log.filter((event) => event.position > after)
      return Stream.fromIterable(options?.limit === undefined ? rows : rows.slice(0, options.limit))
    })
  return EventStore.EventStore.of({
    append: (stream, events) =>
      Effect.map(DateTime.now, (recordedAt) => {
        const positions: Array<bigint> = []
        for (const event of events) {
          const version = (versions.get(stream) ?? 0) + 1
          versions.set(stream, version)
          const position = BigInt(log.length + 1)
          positions.push(position)
          log.push({
            position,
            transactionId: position,
            stream: stream as StreamName.StreamName,
            category: stream.slice(0, stream.indexOf("-")),
            streamVersion: version,
            eventId: crypto.randomUUID(),
            type: event.type,
            schemaVersion: 1,
            data: event.data,
            metadata: {},
            recordedAt
          })
        }
        return { stream: stream as StreamName.StreamName, version: versions.get(stream) ?? 0, positions }
      }),
    readStream: (stream) => Stream.fromIterable(log.filter((event) => event.stream === stream)),
    readCategories: (categories, options) =>
      readAll(options).pipe(Stream.filter((event) => categories.includes(event.category))),
    readAll,
    streamVersion: (stream) => Effect.sync(() => versions.get(stream) ?? 0)
  })
})
