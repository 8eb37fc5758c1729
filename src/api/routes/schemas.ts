// Response shapes shared by several routes. Error bodies allow extra keys: DRF's field errors and
// simplejwt's `messages` list travel through them.
import { Type } from 'typebox'

export const ErrorBody = Type.Object(
  { detail: Type.Optional(Type.String()), code: Type.Optional(Type.String()) },
  { additionalProperties: true, description: 'simplejwt/DRF error: `detail` (and `code`), or `{"field": ["message"]}` for 400' },
)
export const Empty = Type.Object({}, { description: 'An empty object' })

export const errorResponses = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBody]))

export const bearer = [{ bearerAuth: [] }]
