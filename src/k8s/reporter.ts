// Which Events were already written: a controller passes over the same object again and
// again (resyncs, retries, reconfigurations), and an Event must be written when what
// there is to say about it changes, not on every pass. One record for every kind of
// report (channel) and object, instead of one map per kind.

export class Reporter<Channel extends string> {
  private readonly said = new Map<string, Map<Channel, string>>();

  /** Runs `write` unless `what` is what was last said on `channel` about `object`. */
  say(channel: Channel, object: string, what: string, write: () => void): void {
    let channels = this.said.get(object);
    if (channels?.get(channel) === what) return;
    if (!channels) this.said.set(object, (channels = new Map()));
    channels.set(channel, what);
    write();
  }

  /** Nothing to say any more on `channel` about `object`: the next report is new again. */
  clear(channel: Channel, object: string): void {
    const channels = this.said.get(object);
    channels?.delete(channel);
    if (channels?.size === 0) this.said.delete(object);
  }

  /** The objects something was said about on `channel`. */
  objects(channel: Channel): string[] {
    return [...this.said].filter(([, c]) => c.has(channel)).map(([object]) => object);
  }

  /** The object is gone. */
  forget(object: string): void {
    this.said.delete(object);
  }
}
