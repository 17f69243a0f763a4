import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router-dom';
import { ExchangeApiError } from '@exchange/sdk';
import { App } from './App.tsx';
import { AuthProvider, StreamProvider } from './lib/api.tsx';
import { StepUpProvider } from './components/step-up.tsx';
import './styles.css';

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 2_000,
      // The SDK already retries 429/503/network errors; a 4xx is the answer.
      retry: (n, err) => !(err instanceof ExchangeApiError) && n < 2,
      refetchOnWindowFocus: true,
    },
  },
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <BrowserRouter>
        <AuthProvider>
          <StreamProvider>
            <StepUpProvider>
              <App />
            </StepUpProvider>
          </StreamProvider>
        </AuthProvider>
      </BrowserRouter>
    </QueryClientProvider>
  </StrictMode>,
);
