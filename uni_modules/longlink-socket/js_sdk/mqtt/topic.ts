import { fail } from '../errors'

/** MQTT strings are at most 65535 bytes; a topic is text without U+0000. */
const MAX_LENGTH = 65535

/**
 * Checks a subscription filter (MQTT 3.1.1 §4.7, MQTT 5 §4.8.2 shared subscriptions) and throws INVALID_TOPIC:
 * `#` only as the whole last level, `+` only as a whole level, `$share/<group>/<filter>` with a plain group.
 */
export function checkFilter(filter: unknown): string {
  if (typeof filter !== 'string' || filter === '' || filter.length > MAX_LENGTH || filter.includes('\u0000')) {
    throw fail('INVALID_TOPIC', `invalid topic filter ${JSON.stringify(filter)}`)
  }
  const levels = matchLevels(filter)
  if (!levels) throw fail('INVALID_TOPIC', `invalid shared subscription ${JSON.stringify(filter)}`)
  levels.forEach((level, i) => {
    if ((level.includes('#') && (level !== '#' || i !== levels.length - 1)) || (level.includes('+') && level !== '+')) {
      throw fail('INVALID_TOPIC', `invalid wildcard in topic filter ${JSON.stringify(filter)}`)
    }
  })
  return filter
}

/** What a topic name may not hold. One shared object: a literal in the function would be rebuilt on every publish. */
// eslint-disable-next-line no-control-regex -- MQTT forbids U+0000 in topics (§1.5.4): finding it is the point.
const NOT_IN_TOPIC = /[+#\u0000]/

/** Checks a topic name to publish to: not empty, no wildcard (MQTT forbids them in PUBLISH). */
export function checkTopic(topic: unknown): string {
  if (typeof topic !== 'string' || topic === '' || topic.length > MAX_LENGTH || NOT_IN_TOPIC.test(topic)) {
    throw fail('INVALID_TOPIC', `cannot publish to ${JSON.stringify(topic)}: a topic needs text and no + or #`)
  }
  return topic
}

/** The levels a filter matches against: a shared subscription matches by the filter after its group. */
function matchLevels(filter: string): string[] | undefined {
  const levels = filter.split('/')
  if (levels[0] !== '$share') return levels
  // $share/<group>/<filter>: the group is one level with no wildcards, and a filter must follow.
  const group = levels[1]
  if (levels.length < 3 || !group || /[+#]/.test(group)) return undefined
  return levels.slice(2)
}

/** Whether `topic` matches `filter` (wildcards, `$`-topics hidden from leading wildcards, shared subscriptions). */
export function topicMatches(filter: string, topic: string): boolean {
  const want = matchLevels(filter)
  if (!want) return false
  const have = topic.split('/')
  // Topics starting with $ (like $SYS) are not matched by a filter starting with a wildcard (MQTT §4.7.2).
  if (topic[0] === '$' && (want[0] === '+' || want[0] === '#')) return false
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '#') return true
    if (i >= have.length || (want[i] !== '+' && want[i] !== have[i])) return false
  }
  return have.length === want.length
}
