/** Passwords out of every message, cache file and log: URLs and proxy values are printed redacted. */

/** The text with the password of every URL in it replaced by *** (`http://bob:***@proxy:8080`), for messages, caches and logs. */
export function redactCredentials(text: string): string {
  return text.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s/?#@:]*):([^\s/?#@]*)@/g, '$1$2:***@');
}
