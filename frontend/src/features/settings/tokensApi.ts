/**
 * Operator API tokens (`/api/auth/tokens`). The list never carries a key; the create
 * response carries it exactly once. That response lives only in the create mutation's
 * state, which the page resets when the "copy your key" modal closes.
 */
import { api } from "../../api/api";

export interface OperatorToken {
  id: number;
  name: string;
  /** The key's public prefix, enough to tell tokens apart in a script's config. */
  prefix: string;
  createdAt: number;
  lastUsedAt: number | null;
  revoked: boolean;
}

export interface CreatedToken extends OperatorToken {
  /** The full bearer key: shown once, never fetched again. */
  key: string;
}

export const tokensApi = api.injectEndpoints({
  endpoints: (build) => ({
    getTokens: build.query<OperatorToken[], void>({
      query: () => "/auth/tokens",
      transformResponse: (data: unknown) => (Array.isArray(data) ? (data as OperatorToken[]) : []),
      providesTags: ["Token"],
    }),
    createToken: build.mutation<CreatedToken, { name: string }>({
      query: (body) => ({ url: "/auth/tokens", method: "POST", body }),
      invalidatesTags: ["Token"],
    }),
    revokeToken: build.mutation<unknown, number>({
      query: (id) => ({ url: `/auth/tokens/${id}`, method: "DELETE" }),
      invalidatesTags: ["Token"],
    }),
  }),
});

export const { useGetTokensQuery, useCreateTokenMutation, useRevokeTokenMutation } = tokensApi;
