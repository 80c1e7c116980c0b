import { EventStore, Snapshots } from "@evently/store"
import { CommandHandlerSuite } from "@evently/testing"
import * as Layer from "effect/Layer"

CommandHandlerSuite.suite("the memory stores", Layer.merge(EventStore.layerMemory, Snapshots.layerMemory))
