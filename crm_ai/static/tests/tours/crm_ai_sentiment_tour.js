/** @odoo-module **/
import { registry } from "@web/core/registry";

// A salesperson opens a lead whose customer complained: the AI tab says why, and the
// chatter marks the customer's message.
registry.category("web_tour.tours").add("crm_ai_sentiment_tour", {
    steps: () => [
        {
            content: "Open the AI Insights tab",
            trigger: ".o_notebook .nav-link:contains('AI Insights')",
            run: "click",
        },
        {
            content: "The lead's sentiment is negative, with the words behind it",
            trigger: ".o_field_widget[name='ai_sentiment_evidence']:contains('very disappointed')",
        },
        {
            content: "Scroll down to the chatter",
            trigger: ".o-mail-Chatter",
            run() {
                document.querySelector(".o-mail-Chatter").scrollIntoView();
            },
        },
        {
            content: "The chatter marks the customer's message negative",
            trigger: ".o-mail-Chatter .o_crm_ai_message_sentiment:contains('negative')",
        },
    ],
});
