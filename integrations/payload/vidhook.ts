// vidhook for Payload CMS: an `afterChange` collection hook that sends a document to vidhook as
// Standard Webhooks-signed JSON when it is published (the transition to `_status: 'published'`,
// which needs Drafts enabled on the collection). Later saves of a published document are not
// sent, so vidhook's own write-back (a PATCH of the video field) does not trigger it again.
//
// Use:
//   import { vidhookAfterChange } from './vidhook'
//   export const Posts: CollectionConfig = {
//     slug: 'posts',
//     versions: { drafts: true },
//     fields: [ /* title, content (richText), …, */ { name: 'videoUrl', type: 'text' } ],
//     hooks: { afterChange: [vidhookAfterChange] },
//   }
// Environment: VIDHOOK_ENDPOINT (https://vidhook.example.com/hooks/payload), VIDHOOK_SECRET (whsec_…).
import crypto from 'node:crypto'
import type { CollectionAfterChangeHook } from 'payload'

function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const digest = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')
  return `v1,${digest}`
}

/** Rich text (Lexical) to plain paragraphs: vidhook narrates text, not markup. */
function lexicalText(node: any): string {
  if (!node) return ''
  if (typeof node.text === 'string') return node.text
  const children: any[] = node.children ?? node.root?.children ?? []
  const joiner = node.type === 'paragraph' || node.type === 'heading' ? '' : '\n\n'
  return children.map(lexicalText).join(joiner)
}

export const vidhookAfterChange: CollectionAfterChangeHook = async ({ doc, previousDoc, collection, req }) => {
  const published = doc._status === 'published' && previousDoc?._status !== 'published'
  const endpoint = process.env.VIDHOOK_ENDPOINT
  const secret = process.env.VIDHOOK_SECRET
  if (!published || !endpoint || !secret || req.context?.vidhook) return doc
  const body = JSON.stringify({
    type: 'content.published',
    timestamp: new Date().toISOString(),
    data: {
      id: String(doc.id),
      title: doc.title,
      body_text: lexicalText(doc.content),
      locale: req.locale ?? 'en-US',
      kind: collection.slug,
      revision: doc.updatedAt,
    },
  })
  const id = `payload_${collection.slug}_${doc.id}_${Date.parse(doc.updatedAt)}`
  const timestamp = Math.floor(Date.now() / 1000)
  // Not awaited by the save: a slow or failed delivery must not fail the editor's publish.
  // vidhook answers 503 while it cannot commit; retry a few times with backoff.
  void (async () => {
    for (const delay of [0, 5_000, 30_000, 120_000]) {
      await new Promise((resolve) => setTimeout(resolve, delay))
      try {
        const response = await fetch(endpoint, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'webhook-id': id,
            'webhook-timestamp': String(timestamp),
            'webhook-signature': sign(secret, id, timestamp, body),
          },
          body,
        })
        if (response.ok || (response.status >= 400 && response.status < 500 && response.status !== 429)) return
      } catch (error) {
        req.payload.logger.warn(`vidhook: delivery of ${id} failed: ${error}`)
      }
    }
  })()
  return doc
}
