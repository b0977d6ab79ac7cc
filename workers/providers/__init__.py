"""Provider adapters: each turns an OpenAI chat body into one provider call over httpx and
returns the OpenAI ``chat.completion`` shape, or raises ``ProviderCallError``."""
