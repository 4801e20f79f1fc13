import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router-dom";
import { AppRoutes } from "./app/AppRoutes";
import { Providers } from "./app/Providers";
import { setupStore } from "./app/store";

const store = setupStore();

createRoot(document.getElementById("root") as HTMLElement).render(
  <StrictMode>
    <Providers store={store}>
      <BrowserRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
        <AppRoutes />
      </BrowserRouter>
    </Providers>
  </StrictMode>,
);
