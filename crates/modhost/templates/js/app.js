// The `{name}` modhost module.
import { defineModule, db, kv, log } from './sdk/modhost_sdk.js';

export const { lifecycle, hooks } = defineModule({
  install() {
    kv.set('greeting', 'Hello');
    log.info('{name} installed');
  },

  // Named as module.xml's <methods> names them. A handler returns a string
  // (JSON.stringify structured data); what it throws fails the call with its stack, and
  // what the host refuses (SQL that fails, say) is thrown as a HostError.
  handlers: {
    // `get_config` is a pipeline: add this module's part to what came before.
    {name}_get_config(hook, payload) {
      return `${payload}; {name}\n`;
    },

    {name}_hello(hook, payload) {
      const greeting = kv.get('greeting') ?? 'Hello';
      db.execute('INSERT INTO {name}_greetings (who) VALUES (?1)', payload);
      log.info('greeted', { who: payload });
      return `${greeting}, ${payload}!`;
    },
  },
});
