import { api, rememberCsrfToken } from "../../api/api";

export interface User {
  username: string;
  isStaff: boolean;
}

export const authApi = api.injectEndpoints({
  endpoints: (build) => ({
    me: build.query<User, void>({
      query: () => "/auth/me",
      transformResponse: (data: { user: User }) => data.user,
      providesTags: ["Me"],
    }),
    login: build.mutation<User, { username: string; password: string }>({
      query: (body) => ({ url: "/auth/login", method: "POST", body }),
      transformResponse: (data: { user: User; csrfToken?: string }) => {
        // Django rotates the CSRF token on login.
        rememberCsrfToken(data.csrfToken);
        return data.user;
      },
      async onQueryStarted(_arg, { dispatch, queryFulfilled }) {
        try {
          const { data: user } = await queryFulfilled;
          dispatch(authApi.util.upsertQueryData("me", undefined, user));
        } catch {
          // The page shows the error from the mutation result.
        }
      },
    }),
    logout: build.mutation<unknown, void>({
      query: () => ({ url: "/auth/logout", method: "POST" }),
    }),
  }),
});

export const { useMeQuery, useLoginMutation, useLogoutMutation } = authApi;
